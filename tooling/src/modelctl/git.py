"""The one place modelctl runs git; failures become errors that name the command and its stderr."""

from __future__ import annotations

import subprocess
from pathlib import Path

from modelctl.errors import ModelctlError

ZERO_SHA = "0" * 40


class GitError(ModelctlError):
    pass


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise GitError("git is not installed or not on PATH") from exc
    if check and result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        raise GitError(f"`git {' '.join(args)}` exited {result.returncode}: {' / '.join(tail)}")
    return result


def resolve(root: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None when it is unknown here (e.g. not fetched in a shallow clone)."""
    if not ref or set(ref) == {"0"}:
        return None
    result = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return result.stdout.strip() or None


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
    request = "".join(f"{rev}:{p}\n" for p in paths)
    result = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=root, input=request.encode(), capture_output=True, check=False
    )
    if result.returncode != 0:
        raise GitError(f"`git cat-file --batch` exited {result.returncode}: {result.stderr.decode()[-300:]}")
    data, blobs, offset = result.stdout, {}, 0
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
