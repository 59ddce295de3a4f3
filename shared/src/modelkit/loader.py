"""Read a model's `config.yaml` into a :class:`ModelConfig`, with errors a person can act on.

Every problem is reported as ``<file>:<line>: <key.path>: <what is wrong>; expected <what>``,
all at once, so that a config with three typos takes one round trip to fix, not three.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from modelkit.config import ModelConfig

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ValueError):
    """A config file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _lines(node: yaml.Node, prefix: Loc, out: dict[Loc, int], dupes: list[tuple[Loc, int]]) -> None:
    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            loc = (*prefix, key)
            if key in seen:
                dupes.append((loc, key_node.start_mark.line + 1))
            seen.add(key)
            _lines(value_node, loc, out, dupes)
            out[loc] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*prefix, index), out, dupes)


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    while loc not in lines and loc:
        loc = loc[:-1]
    return lines.get(loc, 1)


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that owns the keys at ``loc`` (None when not a model)."""
    model: type[BaseModel] = ModelConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return None
    return model


# pydantic says "Input should be X"; the CLI's convention is "expected X".
_PHRASES = (
    ("Input should be greater than or equal to ", "expected a value >= "),
    ("Input should be less than or equal to ", "expected a value <= "),
    ("Input should be greater than ", "expected a value > "),
    ("Input should be less than ", "expected a value < "),
    ("Input should be ", "expected "),
    ("String should match pattern ", "expected a string matching "),
    ("String should have ", "expected a string with "),
    ("List should have ", "expected a list with "),
)


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc: Loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner else "no other keys"
        return f"unknown key {loc[-1]!r}; expected one of: {allowed}"
    message = str(error["msg"]).removeprefix("Value error, ")
    for prefix, replacement in _PHRASES:
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
            break
    return f"{error.get('input')!r} is invalid: {message}"


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        if str(part) == "[key]":  # pydantic marks an invalid dict key this way
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_config(text: str, file: str = "config.yaml", expect_name: str | None = None) -> ModelConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(file, line, "", f"invalid YAML: {reason}")]) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError([ConfigProblem(file, 1, "", f"expected a mapping of keys, got {got}")])

    lines: dict[Loc, int] = {}
    dupes: list[tuple[Loc, int]] = []
    _lines(node, (), lines, dupes)
    problems = [
        ConfigProblem(file, line, _dotted(loc), "duplicate key; the later value would silently win")
        for loc, line in dupes
    ]
    config: ModelConfig | None = None
    try:
        config = ModelConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append(ConfigProblem(file, _line_of(loc, lines), _dotted(loc), _describe(dict(error))))
    if config is not None and expect_name is not None and config.name != expect_name:
        problems.append(
            ConfigProblem(
                file,
                _line_of(("name",), lines),
                "name",
                f"{config.name!r} is invalid: must equal the model folder name {expect_name!r}",
            )
        )
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    assert config is not None
    return config


def load_config(path: str | Path, check_folder_name: bool = False) -> ModelConfig:
    """Load and validate ``path``; raise :class:`ConfigError` naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(path), 1, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(path), 1, "", f"cannot be read: {exc}")]) from None
    expect = path.resolve().parent.name if check_folder_name else None
    return parse_config(text, str(path), expect_name=expect)
