"""Read a model's `config.yaml` into a :class:`ModelConfig`, with errors a person can act on.

Every problem is reported as ``<file>:<line>: <key.path>: <what is wrong>; expected <what>``,
all at once, so that a config with three typos takes one round trip to fix, not three.

:func:`read_yaml` is the same reader for any other YAML a person or a tool hands us (a kubeconfig, a
bento.yaml): anchors and aliases refused before anything expands them, errors naming file and line.
"""

from __future__ import annotations

import reprlib
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


# The C loader when PyYAML was built with libyaml (the wheels are): ~10x faster than the pure-Python one.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type, misc]
    """The safe loader, noting duplicate keys while it builds mappings (the cheap place to see them)."""

    has_duplicates = False

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [str(key.value) for key, _ in node.value]
        if len(set(keys)) != len(keys):
            self.has_duplicates = True
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _lines(root: yaml.Node) -> tuple[dict[Loc, int], list[tuple[Loc, int]]]:
    """The line of every key path, and every duplicate key. Only called when there is a problem to report:
    walking the node graph is most of the cost of a load. Iterative, so deep nesting cannot overflow the stack;
    linear, because anchors and aliases (shared nodes) were refused before."""
    lines: dict[Loc, int] = {}
    dupes: list[tuple[Loc, int]] = []
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, prefix = stack.pop()
        lines.setdefault(prefix, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                loc = (*prefix, key)
                if key in seen:
                    dupes.append((loc, key_node.start_mark.line + 1))
                seen.add(key)
                lines[loc] = key_node.start_mark.line + 1
                stack.append((value_node, loc))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*prefix, index)) for index, item in enumerate(node.value))
    return lines, sorted(dupes, key=lambda d: d[1])


_MODEL_CONFIG = "a model config"


def _shared_nodes(text: str, file: str, where: str) -> ConfigProblem | None:
    """The first anchor or alias in ``text``, as a problem saying they are not allowed in ``where``.

    An alias makes the YAML a graph: eight nested levels of nine aliases each (under 500 bytes) expand to
    43 million values for whatever walks them, and ``&a [*a]`` is a cycle (issue 15). A model config is
    short enough to write out in full, so none are allowed; scanning tokens is linear in the text.
    """
    if "&" not in text and "*" not in text:
        return None
    for token in yaml.scan(text, Loader=_BaseLoader):
        if isinstance(token, (yaml.AnchorToken, yaml.AliasToken)):
            kind, sign = ("anchor", "&") if isinstance(token, yaml.AnchorToken) else ("alias", "*")
            return ConfigProblem(
                file,
                token.start_mark.line + 1,
                "",
                f"YAML {kind} {sign}{token.value} is not allowed in {where}; "
                "write the value out in full instead of using anchors (&name) and aliases (*name)",
            )
    return None


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


# The offending value in a message: enough to recognise it, never a whole 500-character string or a deep nest.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 80, 80, 8, 8


def _show(value: object) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return _REPR.repr(value)
    return text if len(text) <= 120 else _REPR.repr(value)


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
    return f"{_show(error.get('input'))} is invalid: {message}"


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        if str(part) == "[key]":  # pydantic marks an invalid dict key this way
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _read(text: str, file: str, where: str = _MODEL_CONFIG) -> tuple[Any, bool]:
    """The YAML document in ``text`` and whether a mapping in it repeats a key; ConfigError when it cannot be read
    (``where`` names the kind of file in the message about anchors)."""
    try:
        shared = _shared_nodes(text, file, where)
        if shared is not None:
            raise ConfigError([shared])
        loader = _Loader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(file, line, "", f"invalid YAML: {reason}")]) from None
    except RecursionError:
        raise ConfigError([ConfigProblem(file, 1, "", "invalid YAML: nested too deeply")]) from None
    return data, loader.has_duplicates


def read_yaml(text: str, file: str) -> Any:
    """The YAML document in ``text`` as plain data (``file`` names it in messages); :class:`ConfigError` when it
    cannot be read.

    Read as a model config is: safe types only, anchors and aliases refused before anything walks the document
    (with ``yaml.safe_load``, 484 bytes of ``<<: *a`` merge keys took 46 s and 820 MB, issue 20 item 12), so any
    text is safe to pass. Nothing is validated: check the type of every value before using it.
    """
    data, _ = _read(text, file, "this file")
    return data


def parse_config(text: str, file: str = "config.yaml", expect_name: str | None = None) -> ModelConfig:
    """Validate the config in ``text`` (``file`` names it in messages); raise :class:`ConfigError`.

    Safe on any text, for example a ``config.yaml`` read from a git blob: anchors and aliases are refused
    before anything walks the document, so a small file cannot make it hang or recurse.
    """
    data, has_duplicates = _read(text, file)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError([ConfigProblem(file, 1, "", f"expected a mapping of keys, got {got}")])

    config: ModelConfig | None = None
    errors: list[dict[str, Any]] = []
    try:
        config = ModelConfig.model_validate(data)
    except ValidationError as exc:
        errors = [dict(error) for error in exc.errors()]
    misnamed = config is not None and expect_name is not None and config.name != expect_name
    if not (has_duplicates or errors or misnamed):
        assert config is not None
        return config

    # Something to report: only now find the lines (the slow part of a load).
    root = yaml.compose(text, Loader=_BaseLoader)
    assert root is not None  # the text held a mapping
    lines, dupes = _lines(root)
    problems = [
        ConfigProblem(file, line, _dotted(loc), "duplicate key; the later value would silently win")
        for loc, line in dupes
    ]
    for error in errors:
        loc = tuple(error["loc"])
        problems.append(ConfigProblem(file, _line_of(loc, lines), _dotted(loc), _describe(error)))
    if misnamed:
        assert config is not None
        problems.append(
            ConfigProblem(
                file,
                _line_of(("name",), lines),
                "name",
                f"{config.name!r} is invalid: must equal the model folder name {expect_name!r}",
            )
        )
    raise ConfigError(sorted(problems, key=lambda p: p.line))


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
