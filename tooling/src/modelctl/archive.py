"""Exported `.bento` archives checked before anything imports them (issue 13 items 2 and 3).

`bentoml export` (BentoML 1.4) writes the bento folder with ``shutil.make_archive``: a tar (xz for
``.bento``, gzip/bz2/plain for ``.tar.gz``/``.tar.bz2``/``.tar``) whose members are ``./``,
``./bento.yaml``, ``./models/<name>/<version>/...``, ``./models/<name>/latest``, ``./src/...``.
`bentoml import` extracts it through fsspec, and fsspec before 2026.9 writes a ``../`` member outside
its target; nothing here trusts the installed versions. So, before any import:

1. the file's sha256 must equal a digest that was handed over separately (a job output, not a file
   beside the archive: whoever can rewrite the archive can rewrite that file too);
2. every member must be a plain directory or regular file with a relative path free of ``..``,
   of sane size and count (no links, devices, FIFOs, sparse files, duplicates);
3. the bento tag comes from the archive's own ``bento.yaml``: a plain name equal to the model and a
   plain version, because both become paths (the store, the gate record, the ledger).

:func:`verified_copy` does all three on a private copy, so the bytes checked are the bytes imported;
:func:`import_bento` runs ``bentoml import`` on that copy.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import yaml

from modelctl import cmd, platformenv
from modelctl.errors import ModelctlError

# A name or version that is safe as one path component: BentoML's own tag rule, upper case allowed.
_PLAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Magic bytes of the compressions `bentoml export` can write; anything else must be a plain tar.
_MAGIC = ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b", "gz"), (b"BZh", "bz2"))
# The file name a verified copy gets: `bentoml import` picks the decompressor from the extension.
_SUFFIX = {"xz": ".bento", "gz": ".tar.gz", "bz2": ".tar.bz2", "": ".tar"}
_CHUNK = 1 << 20


class ArchiveError(ModelctlError):
    """An archive that must not be imported; the message names the file and the member or field."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds for an archive; a real bento of a large model fits well inside the defaults."""

    max_file_bytes: int = 16 << 30
    max_members: int = 100_000
    max_member_bytes: int = 16 << 30
    max_total_bytes: int = 32 << 30  # unpacked
    max_metadata_bytes: int = 1 << 20  # bento.yaml, model.yaml, latest


@dataclass(frozen=True)
class ArchiveInfo:
    """What a checked archive holds. ``tag`` is ``<model>:<version>``, safe to use in paths."""

    tag: str
    model_tag: str | None
    sha256: str
    size: int  # bytes of the archive file
    model_tags: tuple[str, ...] = ()
    service: str = ""  # the entry service class, e.g. "IrisClassifier" (BentoCloud's services key)
    labels: Mapping[str, str] = field(default_factory=dict)  # bento labels, e.g. git_commit
    routes: tuple[str, ...] = ()  # the service's API routes, e.g. ("/predict",): what the watch judges
    compression: str = ""  # "xz", "gz", "bz2" or "" (plain tar)
    members: int = 0
    unpacked_bytes: int = 0

    @property
    def name(self) -> str:
        return self.tag.partition(":")[0]

    @property
    def version(self) -> str:
        return self.tag.partition(":")[2]


def plain(value: object, what: str) -> str:
    """``value`` if it is a plain name (letters, digits, ``_.-``, alphanumeric at both ends, <= 63 chars)."""
    if not isinstance(value, str) or not _PLAIN.match(value) or ".." in value:
        raise ArchiveError(f"{what} {value!r} is not a plain name (letters, digits, '_', '.', '-'; no '/' or '..')")
    return value


def split_tag(tag: object, what: str = "bento tag") -> tuple[str, str]:
    """(name, version) of a ``name:version`` tag whose parts are both plain names."""
    if not isinstance(tag, str) or tag.count(":") != 1:
        raise ArchiveError(f"{what} {tag!r} is not of the form name:version")
    name, version = tag.split(":")
    return plain(name, f"{what} {tag!r}: name"), plain(version, f"{what} {tag!r}: version")


def check_tag(tag: object, model: str) -> str:
    """``tag`` if it is a plain ``<model>:<version>``; use it before a tag from anywhere becomes a path."""
    name, version = split_tag(tag)
    if name != model:
        raise ArchiveError(f"bento tag {tag!r} is not a bento of {model} (its name is {name!r})")
    return f"{name}:{version}"


def check_digest(expected: str) -> str:
    """The lower-case hex form of an expected sha256 (``sha256:`` prefix allowed)."""
    value = expected.strip().lower().removeprefix("sha256:")
    if not _SHA256.match(value):
        raise ArchiveError(f"expected digest {expected!r} is not a sha256 (64 hex digits)")
    return value


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with _open_regular(path) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inspect(path: Path, model: str, sha256: str, *, limits: Limits = Limits()) -> ArchiveInfo:
    """Check ``path`` (digest, then every member, then ``bento.yaml``) without extracting anything.

    Raises ArchiveError naming the file and the member or field at fault. The archive may still be
    replaced after this returns: import :func:`verified_copy`'s copy, not ``path``.
    """
    expected = check_digest(sha256)
    path = Path(path)
    size = _checked_size(path, limits)
    actual = sha256_of(path)
    if not hmac.compare_digest(actual, expected):
        raise ArchiveError(
            f"{path} has sha256 {actual}, expected {expected}: not the archive that was built and tested"
        )
    return _inspect_members(path, model, actual, size, limits)


@contextmanager
def verified_copy(
    path: Path, model: str, sha256: str, *, limits: Limits = Limits(), workdir: Path | None = None
) -> Iterator[tuple[Path, ArchiveInfo]]:
    """A private copy of ``path`` (mode 0700 folder), hashed while copied and then inspected.

    Yields (copy, info); the copy is named ``<model>-<version>`` plus the suffix `bentoml import`
    needs for its compression, and is removed on exit.
    """
    expected = check_digest(sha256)
    path = Path(path)
    _checked_size(path, limits)
    with tempfile.TemporaryDirectory(prefix="modelctl-bento-", dir=workdir) as folder:
        staging = Path(folder) / "archive"
        digest = hashlib.sha256()
        size = 0
        with _open_regular(path) as source, staging.open("xb") as target:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                size += len(chunk)
                if size > limits.max_file_bytes:
                    raise ArchiveError(f"{path} is larger than {limits.max_file_bytes} bytes")
                digest.update(chunk)
                target.write(chunk)
        actual = digest.hexdigest()
        if not hmac.compare_digest(actual, expected):
            raise ArchiveError(
                f"{path} has sha256 {actual}, expected {expected}: not the archive that was built and tested"
            )
        info = _inspect_members(staging, model, actual, size, limits)
        copy = staging.rename(Path(folder) / f"{info.name}-{info.version}{_SUFFIX[info.compression]}")
        yield copy, info


def import_bento(
    python: Path,
    path: Path,
    model: str,
    sha256: str,
    *,
    env: Mapping[str, str],
    limits: Limits = Limits(),
    timeout: float = 900,
) -> ArchiveInfo:
    """Check ``path`` and `bentoml import` the checked copy with ``python`` (the platform's BentoML, run isolated).

    ``env`` must hold the BENTOML_HOME to import into. A bento with the same tag already in the store
    is accepted only when its ``bento.yaml`` is byte-for-byte the archive's.
    """
    home = env.get("BENTOML_HOME")
    if not home:
        raise ArchiveError("import_bento needs BENTOML_HOME in env (the store to import into)")
    with verified_copy(path, model, sha256, limits=limits) as (copy, info):
        stored = Path(home) / "bentos" / info.name / info.version / "bento.yaml"
        result = cmd.run(
            platformenv.command(python, "import", copy),
            input=platformenv.secrets_input(),
            what=f"bentoml import {info.tag}",
            env=env,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            if "already exists" not in result.output:
                raise cmd.CommandError(f"bentoml import {info.tag}", result.argv, result.returncode, result.output)
            if not stored.is_file() or stored.read_bytes() != _member_bytes(copy, info.compression, "bento.yaml"):
                raise ArchiveError(
                    f"a different bento tagged {info.tag} is already in the store {home}: refusing to mix them"
                )
        elif not stored.is_file():
            raise ArchiveError(f"bentoml import {info.tag} reported success but {stored} does not exist")
    return info


# --- internals ---------------------------------------------------------------------------------


@contextmanager
def _open_regular(path: Path) -> Iterator[IO[bytes]]:
    """``path`` opened for reading, refused unless it is a regular file (not a FIFO, device or folder)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArchiveError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def _checked_size(path: Path, limits: Limits) -> int:
    try:
        info = path.stat()
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ArchiveError(f"{path} is not a regular file")
    if info.st_size > limits.max_file_bytes:
        raise ArchiveError(f"{path} is {info.st_size} bytes, more than the limit of {limits.max_file_bytes}")
    return info.st_size


def _compression(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"PK\x03\x04"):
        raise ArchiveError(f"{path} is a zip file; modelctl imports only tar bentos (`bentoml export` writes .bento)")
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return ""


def _member_path(name: str) -> str | None:
    """The normalized relative path of a member name, None for the archive root; ArchiveError if unsafe."""
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ArchiveError(f"member {name!r} has a control character in its name")
    if "\\" in name:
        raise ArchiveError(f"member {name!r} has a backslash in its name")
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(f"member {name!r} is an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"member {name!r} has a '..' component")
    return "/".join(parts) or None


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr():
        return "a character device"
    if member.isblk():
        return "a block device"
    if member.isfifo():
        return "a FIFO"
    if member.issparse() or member.type == tarfile.GNUTYPE_SPARSE:
        return "a sparse file"
    return f"of tar type {member.type!r}"


class _NoAliasLoader(yaml.SafeLoader):
    """bento.yaml as BentoML writes it has no anchors; an alias can only be a trick (issue 15 item 5)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise ArchiveError("bento.yaml uses a YAML alias; BentoML never writes one")
        return super().compose_node(parent, index)


def _yaml_mapping(data: bytes, what: str) -> dict[str, Any]:
    try:
        loaded = yaml.load(data.decode("utf-8"), Loader=_NoAliasLoader)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ArchiveError(f"{what} is not valid UTF-8 YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(loaded, dict):
        raise ArchiveError(f"{what} is not a mapping")
    return loaded


def _open_tar(path: Path, compression: str) -> tarfile.TarFile:
    modes: dict[str, Literal["r:xz", "r:gz", "r:bz2", "r:"]] = {"xz": "r:xz", "gz": "r:gz", "bz2": "r:bz2", "": "r:"}
    return tarfile.open(path, modes[compression])


def _member_bytes(path: Path, compression: str, wanted: str) -> bytes:
    with _open_tar(path, compression) as tar:
        for member in tar:
            if member.isreg() and _member_path(member.name) == wanted:
                handle = tar.extractfile(member)
                if handle is not None:
                    return handle.read()
    return b""


def _inspect_members(path: Path, model: str, digest: str, size: int, limits: Limits) -> ArchiveInfo:
    compression = _compression(path)
    files: dict[str, int] = {}
    dirs: set[str] = set()
    metadata: dict[str, bytes] = {}
    total = 0
    count = 0
    try:
        with _open_tar(path, compression) as tar:
            for member in tar:
                count += 1
                if count > limits.max_members:
                    raise ArchiveError(f"has more than {limits.max_members} members")
                relative = _member_path(member.name)
                if member.isdir():
                    if relative is not None:
                        if relative in files:
                            raise ArchiveError(f"member {member.name!r} is both a file and a folder")
                        dirs.add(relative)
                    continue
                if not member.isreg() or member.issparse() or member.type == tarfile.GNUTYPE_SPARSE:
                    raise ArchiveError(f"member {member.name!r} is {_kind(member)}; only folders and files are allowed")
                if relative is None:
                    raise ArchiveError(f"member {member.name!r} is a file at the archive root's own path")
                if relative in files or relative in dirs:
                    raise ArchiveError(f"member {member.name!r} appears twice")
                if member.size < 0 or member.size > limits.max_member_bytes:
                    raise ArchiveError(
                        f"member {member.name!r} is {member.size} bytes (limit {limits.max_member_bytes})"
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise ArchiveError(f"unpacks to more than {limits.max_total_bytes} bytes")
                files[relative] = member.size
                if _is_metadata(relative):
                    if member.size > limits.max_metadata_bytes:
                        raise ArchiveError(f"member {member.name!r} is {member.size} bytes, too large for metadata")
                    handle = tar.extractfile(member)
                    metadata[relative] = handle.read() if handle is not None else b""
    except ArchiveError as exc:
        raise ArchiveError(f"{path}: {exc}") from None
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:  # lzma/zlib errors are OSError/EOFError
        raise ArchiveError(f"{path} is not a readable tar archive: {exc}") from exc
    for relative in files:
        parent = relative.rpartition("/")[0]
        while parent:
            if parent in files:
                raise ArchiveError(f"{path}: member {parent!r} is both a file and a folder")
            parent = parent.rpartition("/")[0]
    try:
        return _bento_info(model, digest, size, compression, files, metadata, total)
    except ArchiveError as exc:
        raise ArchiveError(f"{path}: {exc}") from None


def _is_metadata(relative: str) -> bool:
    parts = relative.split("/")
    if parts == ["bento.yaml"]:
        return True
    return (
        len(parts) >= 3
        and parts[0] == "models"
        and ((len(parts) == 3 and parts[2] == "latest") or (len(parts) == 4 and parts[3] == "model.yaml"))
    )


def _bento_info(
    model: str,
    digest: str,
    size: int,
    compression: str,
    files: dict[str, int],
    metadata: dict[str, bytes],
    total: int,
) -> ArchiveInfo:
    if "bento.yaml" not in metadata:
        raise ArchiveError("has no bento.yaml at its root: not an exported bento")
    info = _yaml_mapping(metadata["bento.yaml"], "bento.yaml")
    name = plain(info.get("name"), "bento.yaml name")
    version = plain(info.get("version"), "bento.yaml version")
    if name != model:
        raise ArchiveError(f"bento.yaml names the bento {name!r}, not {model!r}: refusing another model's bento")
    listed = _listed_models(info)
    packaged = _packaged_models(files, metadata)
    for tag in listed:
        if tag not in packaged:
            raise ArchiveError(f"bento.yaml lists model {tag} but the archive has no models/{tag.replace(':', '/')}/")
    labels = info.get("labels") or {}
    service = str(info.get("entry_service") or str(info.get("service") or "").rpartition(":")[2])
    model_tags = tuple(listed) or tuple(sorted(packaged))
    own = [tag for tag in model_tags if tag.partition(":")[0] == model] + list(model_tags)
    return ArchiveInfo(
        tag=f"{name}:{version}",
        model_tag=own[0] if own else None,
        sha256=digest,
        size=size,
        model_tags=model_tags,
        service=service,
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        routes=_routes(info),
        compression=compression,
        members=len(files),
        unpacked_bytes=total,
    )


def _routes(info: dict[str, Any]) -> tuple[str, ...]:
    schema = info.get("schema")
    routes = schema.get("routes") if isinstance(schema, dict) else None
    return tuple(
        str(route["route"]) for route in routes or [] if isinstance(route, dict) and isinstance(route.get("route"), str)
    )


def _listed_models(info: dict[str, Any]) -> list[str]:
    """Model tags bento.yaml lists (top level and per service, BentoML 1.4) that ship inside the bento."""
    entries = list(info.get("models") or [])
    for service in info.get("services") or []:
        if isinstance(service, dict):
            entries += service.get("models") or []
    tags: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ArchiveError(f"bento.yaml has a model entry that is not a mapping: {entry!r}")
        tag = entry.get("tag")
        name, version = split_tag(tag, "bento.yaml model tag")
        if entry.get("registry", "bentoml") in (None, "bentoml") and f"{name}:{version}" not in tags:
            tags.append(f"{name}:{version}")
    return tags


def _packaged_models(files: dict[str, int], metadata: dict[str, bytes]) -> set[str]:
    """Tags of the models under models/ (each name and version plain, model.yaml agreeing with its folder)."""
    tags: set[str] = set()
    for relative in files:
        parts = relative.split("/")
        if parts[0] != "models" or len(parts) < 3:
            continue
        name = plain(parts[1], f"model folder models/{parts[1]}")
        if len(parts) == 3 and parts[2] == "latest":
            latest = metadata.get(relative, b"").decode("utf-8", "replace").strip()
            plain(latest, f"models/{name}/latest points to")
            continue
        version = plain(parts[2], f"model folder models/{name}/{parts[2]}")
        tags.add(f"{name}:{version}")
    for tag in tags:
        name, version = tag.split(":")
        key = f"models/{name}/{version}/model.yaml"
        if key not in metadata:
            raise ArchiveError(f"models/{name}/{version}/ has no model.yaml")
        model_yaml = _yaml_mapping(metadata[key], key)
        if (model_yaml.get("name"), model_yaml.get("version")) != (name, version):
            raise ArchiveError(
                f"{key} says {model_yaml.get('name')!r}:{model_yaml.get('version')!r}, not its folder's {tag}"
            )
    return tags
