"""One reading of a requirements file, shared by tox (toxfile.py), `modelctl build` and `modelctl doctor`.

Standard library only: toxfile.py imports this module before any environment exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")


@dataclass(frozen=True)
class Line:
    """One logical requirement line: ``kind`` is "package", "editable", "path", "url" or "option"."""

    text: str
    kind: str
    target: str  # the package spec, path or URL (option lines: the whole line)
    source: Path  # the requirements file it came from

    @property
    def is_local(self) -> bool:
        """A local directory or file (installed from disk), as opposed to an index package or a remote URL."""
        return self.kind in ("editable", "path") and not _is_url(self.target)

    @property
    def name(self) -> str | None:
        match = _NAME.match(self.target) if self.kind == "package" else None
        return match.group(1).lower().replace("_", "-") if match else None

    @property
    def pinned(self) -> bool:
        """``name==version`` (exact), or a non-package line (paths and URLs are pinned by what they point at)."""
        if self.kind != "package":
            return True
        spec = self.target.split(";", 1)[0]
        return "==" in spec and not any(op in spec for op in (">", "<", "!=", "~=", "*"))


_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|(git|hg|svn|bzr)\+)", re.IGNORECASE)


def _is_url(target: str) -> bool:
    """A URL to install from (``https://...``, ``git+https://...``); ``name @ url`` is a package line."""
    return _URL.match(target) is not None


def _strip_comment(raw: str) -> str:
    # pip: a comment starts at "#" at the line start or after whitespace (URLs may contain "#egg=").
    return re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()


def read(path: Path, _seen: frozenset[Path] = frozenset()) -> list[Line]:
    """Every requirement of ``path``, with ``-r`` includes followed (relative to the including file)."""
    path = path.resolve()
    if path in _seen:
        raise ValueError(f"{path}: requirements include themselves (-r cycle)")
    lines: list[Line] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        text = _strip_comment(raw)
        if not text:
            continue
        if text.startswith(("-r ", "--requirement ", "-r", "--requirement=")):
            target = text.split("=", 1)[1] if text.startswith("--requirement=") else text[2:].strip()
            if text.startswith("--requirement "):
                target = text.split(maxsplit=1)[1]
            lines.extend(read(path.parent / target.strip(), _seen | {path}))
        elif text.startswith(("-e ", "--editable ", "--editable=")):
            target = text.split("=", 1)[1] if text.startswith("--editable=") else text.split(maxsplit=1)[1]
            lines.append(Line(text, "editable", target.strip(), path))
        elif text.startswith("-"):
            lines.append(Line(text, "option", text, path))
        elif text.startswith((".", "/", "~")):
            lines.append(Line(text, "path", text, path))
        elif _is_url(text):  # a bare URL (a PEP 508 `name @ url` is a package line)
            lines.append(Line(text, "url", text, path))
        else:
            lines.append(Line(text, "package", text, path))
    return lines


def absolute(line: Line) -> str:
    """The line for an installer run from any directory: local paths made absolute against their file.

    pip and uv resolve a relative path in a requirements file against the current directory, not the
    file, so `-e ../../shared` works from the model folder only; tox installs from the repo root.
    """
    if not line.is_local:
        return line.text
    resolved = (line.source.parent / Path(line.target).expanduser()).resolve()
    return f"-e {resolved}" if line.kind == "editable" else str(resolved)


def uses_shared(lines: list[Line]) -> bool:
    """Whether the requirements install the monorepo's shared/ package (by path or as `modelkit`)."""
    return any(
        (line.is_local and Path(line.target.rstrip("/")).name == "shared") or line.name == "modelkit" for line in lines
    )


def uses_shared_text(text: str, source: Path = Path("requirements.txt")) -> bool:
    """:func:`uses_shared` for requirements text read from git (no ``-r`` includes are followed)."""
    lines = []
    for raw in text.splitlines():
        stripped = _strip_comment(raw)
        if not stripped:
            continue
        if stripped.startswith(("-e ", "--editable ")):
            lines.append(Line(stripped, "editable", stripped.split(maxsplit=1)[1], source))
        elif stripped.startswith((".", "/")):
            lines.append(Line(stripped, "path", stripped, source))
        elif not stripped.startswith("-"):
            lines.append(Line(stripped, "package", stripped, source))
    return uses_shared(lines)


def for_bento(lines: list[Line]) -> str:
    """The requirements a bento installs: every line except local paths (shared/ comes as a wheel instead).

    Remote editable installs (``-e git+https://...``) are kept as plain URL requirements.
    """
    kept = []
    for line in lines:
        if line.is_local:
            continue
        kept.append(line.target if line.kind == "editable" else line.text)
    return "\n".join(kept) + "\n"
