"""The git calls modelctl makes; failures are CommandErrors that name the command and its output."""

from __future__ import annotations

from pathlib import Path

from modelctl import cmd

ZERO_SHA = "0" * 40


def git(root: Path, *args: str, check: bool = True) -> cmd.Completed:
    return cmd.run(["git", *args], what=f"git {args[0]}" if args else "git", cwd=root, check=check)


def resolve(root: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None when it is unknown here (e.g. not fetched in a shallow clone)."""
    if not ref or set(ref) == {"0"}:
        return None
    result = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return result.stdout.strip() or None


def head(root: Path) -> str:
    """The checked-out commit (full hex: ancestry checks compare it), or "unknown" outside a git checkout."""
    return git(root, "rev-parse", "HEAD", check=False).stdout.strip() or "unknown"


def is_ancestor(root: Path, older: str, newer: str) -> bool | None:
    """Whether ``older`` is an ancestor of (or equal to) ``newer``; None when either is unknown here."""
    result = git(root, "merge-base", "--is-ancestor", older, newer, check=False)
    return {0: True, 1: False}.get(result.returncode)


def changed_files(root: Path, base: str, head: str) -> list[tuple[str, str]]:
    """(status, path) for every file that differs between the merge base of base..head and head."""
    merge_base = git(root, "merge-base", base, head, check=False).stdout.strip() or base
    out = git(root, "diff", "--name-status", "--no-renames", "-z", merge_base, head).stdout
    parts = [p for p in out.split("\0") if p]
    return list(zip(parts[::2], parts[1::2], strict=True))


def read_blobs(root: Path, rev: str, paths: list[str]) -> dict[str, str]:
    """The text of ``paths`` at ``rev`` in one git process (absent paths are left out)."""
    if not paths:
        return {}
    request = "".join(f"{rev}:{p}\n" for p in paths).encode()
    data = cmd.run_bytes(["git", "cat-file", "--batch"], what="git cat-file --batch", cwd=root, input=request)
    blobs, offset = {}, 0
    for path in paths:
        end = data.index(b"\n", offset)
        header = data[offset:end].decode()
        offset = end + 1
        if header.endswith(" missing") or header.endswith(" ambiguous"):
            continue
        size = int(header.rsplit(" ", 1)[1])
        blobs[path] = data[offset : offset + size].decode("utf-8", "replace")
        offset += size + 1
    return blobs


def list_tree(root: Path, rev: str, path: str) -> list[str]:
    out = git(root, "ls-tree", "-r", "--name-only", "-z", rev, "--", path).stdout
    return [p for p in out.split("\0") if p]


def dirty(root: Path, path: str) -> list[str]:
    """Uncommitted changes (modified, staged or untracked) under ``path``."""
    out = git(root, "status", "--porcelain", "--untracked-files=all", "--", path).stdout
    return [line[3:] for line in out.splitlines() if line.strip()]
