"""procs: process identities, stopping whole server trees, signals that unwind. Real stand-in processes.

The stand-in server behaves like `bentoml serve` where it matters here: it listens on a port and starts a
worker that calls setsid (leaves the process group) and inherits the listening socket.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from modelctl import procs

STAND_IN = """
import os, signal, socket, subprocess, sys, time
args = sys.argv[1:]
port = int(args[args.index("--port") + 1]) if "--port" in args else 0
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", port))
sock.listen()
worker = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)", "stand-in-worker"],
    start_new_session=True, pass_fds=(sock.fileno(),),
)
if os.environ.get("STAND_IN_IGNORES_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(600)
"""


def stand_in_cmd(port: int, bento: str = "iris_classifier:standin") -> list[str]:
    """A command line like the one `bentos.serve_command` builds, run by the stand-in."""
    return [sys.executable, "-c", STAND_IN, "bentoml", "serve", bento, "--host", "127.0.0.1", "--port", str(port)]


def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait (bounded) for ``condition``; fail naming ``what`` (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def gone(identities: list[procs.Identity]) -> bool:
    return not any(i.matches() for i in identities)


Spawn = Callable[..., procs.Server]


def _worker_started(pid: int) -> bool:
    """The worker exists and runs its own command (between fork and exec it still shows its parent's)."""
    workers = [procs.Identity.of(child) for child in procs.descendants(pid)]
    return any(w is not None and "stand-in-worker" in w.cmdline for w in workers)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start stand-ins with `procs.start`; every one (and everything below it) is stopped after the test."""
    started: list[procs.Server] = []
    seen: list[procs.Identity] = []

    def run(cmd: list[str] | None = None, *, with_worker: bool = True, **kwargs: object) -> procs.Server:
        port = procs.free_port()
        server = procs.start(cmd or stand_in_cmd(port), tmp_path, tmp_path / "stand-in.log", **kwargs)  # type: ignore[arg-type]
        started.append(server)
        if cmd is None and with_worker:
            until(lambda: procs.port_in_use(port) and _worker_started(server.pid), "the stand-in's worker")
            seen.extend(server.record_workers())
        return server

    yield run
    for server in started:
        procs.stop_tree([*server.identities, *seen], owner=server.owner, timeout=5)


def test_identity_matches_only_the_process_it_was_taken_from(spawn: Spawn) -> None:
    server = spawn(["sleep", "600"])
    identity = procs.Identity.of(server.pid)
    assert identity is not None and identity == server.identity and identity.matches()
    assert identity.cmdline == ("sleep", "600")
    assert not dataclasses.replace(identity, create_time=identity.create_time - 3600).matches()
    assert not dataclasses.replace(identity, cmdline=("sleep", "601")).matches()
    assert procs.Identity.from_json(identity.to_json()) == identity
    server.stop()
    assert procs.Identity.of(server.pid) is None and not identity.matches()


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda i: dataclasses.replace(i, create_time=i.create_time - 3600), id="older start time"),
        pytest.param(lambda i: dataclasses.replace(i, cmdline=("python", "-m", "bentoml")), id="other cmdline"),
        pytest.param(lambda i: procs.Identity(i.pid, 0.0, ()), id="unverifiable (old record)"),
    ],
)
def test_a_pid_that_is_not_the_recorded_process_is_never_signalled(
    spawn: Spawn, forge: Callable[[procs.Identity], procs.Identity], capsys: pytest.CaptureFixture[str]
) -> None:
    unrelated = spawn(["sleep", "600"], detached=True)
    forged = forge(unrelated.identity)
    assert procs.stop_tree([forged], timeout=5) == []
    assert unrelated.identity.matches(), "the unrelated process is alive"
    assert f"pid {unrelated.pid} is no longer the process modelctl started" in capsys.readouterr().err


def test_stop_tree_stops_the_server_and_its_setsid_worker(spawn: Spawn) -> None:
    server = spawn(detached=True)
    tree = server.identities
    assert len(tree) == 2 and os.getsid(server.workers[0].pid) != os.getsid(server.pid), "the worker left the session"
    stopped = procs.stop_tree(tree, timeout=10)
    assert {i.pid for i in stopped} == {i.pid for i in tree}
    assert gone(tree)


def test_a_worker_orphaned_by_a_killed_server_is_stopped_from_the_record(spawn: Spawn) -> None:
    server = spawn(detached=True)
    tree = server.identities
    os.kill(server.pid, signal.SIGKILL)  # a crash: the worker is re-parented and keeps the port
    until(lambda: not procs.alive(server.pid), "the server to die")
    assert tree[1].matches() and procs.port_in_use(int(server.identity.cmdline[-1]))
    procs.stop_tree(tree, timeout=10)
    assert gone(tree) and not procs.port_in_use(int(server.identity.cmdline[-1]))


def test_the_owner_marker_finds_a_worker_that_nothing_recorded(spawn: Spawn) -> None:
    server = spawn(detached=True, owner="test-owner-orphan")
    worker = server.workers[0]
    assert procs.owner_of(worker.pid) == "test-owner-orphan", "workers inherit the marker"
    os.kill(server.pid, signal.SIGKILL)
    until(lambda: not procs.alive(server.pid), "the server to die")
    assert [p.pid for p in procs.owned_by("test-owner-orphan")] == [worker.pid]
    procs.stop_tree([], owner="test-owner-orphan", timeout=10)
    assert not worker.matches()


def test_what_ignores_sigterm_is_killed_after_the_timeout(spawn: Spawn) -> None:
    server = spawn(detached=True, env={**os.environ, "STAND_IN_IGNORES_TERM": "1"})
    tree = server.identities
    procs.stop_tree(tree, timeout=0.5)
    assert gone(tree)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_supervised_turns_a_signal_into_unwinding_and_stops_its_servers(spawn: Spawn, sig: signal.Signals) -> None:
    handlers = {s: signal.getsignal(s) for s in procs.FORWARDED}
    cleaned_up = []
    with pytest.raises(procs.Interrupted) as info:
        with procs.supervised():
            server = spawn()
            tree = server.identities
            try:
                os.kill(os.getpid(), sig)
                until(lambda: False, "the signal", timeout=30)
            finally:
                cleaned_up.append(True)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == sig
    assert info.value.exit_code == 128 + sig
    assert cleaned_up and gone(tree), "the finally block ran and the server tree was stopped"
    assert {s: signal.getsignal(s) for s in procs.FORWARDED} == handlers


def test_a_second_signal_while_unwinding_hurries_the_cleanup_without_breaking_it(spawn: Spawn) -> None:
    with pytest.raises(procs.Interrupted):
        with procs.supervised():
            server = spawn(env={**os.environ, "STAND_IN_IGNORES_TERM": "1"})
            tree = server.identities
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                until(lambda: False, "the signal", timeout=30)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # the supervisor insists
                server.stop(timeout=600)  # would wait 600 s for the SIGTERM-ignoring stand-in without the hurry
    assert gone(tree)


def test_supervised_stops_its_servers_on_a_normal_exit_but_not_detached_ones(spawn: Spawn) -> None:
    with procs.supervised():
        attached = spawn()
        detached = spawn(detached=True)
    assert gone(attached.identities)
    assert all(i.matches() for i in detached.identities)


def test_a_server_dies_with_its_parent_even_when_the_parent_is_killed(spawn: Spawn, tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    parent_code = (
        "import pathlib, sys, time\n"
        "from modelctl import procs\n"
        "server = procs.start(['sleep', '600'], pathlib.Path('.'), None)\n"
        "pathlib.Path(sys.argv[1]).write_text(str(server.pid))\n"
        "time.sleep(600)\n"
    )
    parent = spawn([sys.executable, "-c", parent_code, str(pid_file)], detached=True)
    until(lambda: pid_file.exists() and pid_file.read_text() != "", "the parent to start its server")
    child = procs.Identity.of(int(pid_file.read_text()))
    assert child is not None and child.cmdline == ("sleep", "600"), "identity taken after the launcher's exec"
    try:
        os.kill(parent.pid, signal.SIGKILL)  # no handler of modelctl runs
        until(lambda: not child.matches(), "the server to get its parent's death signal")
    finally:
        procs.stop_tree([child], timeout=5)


def test_descendants_alive_listeners_and_adopt(spawn: Spawn) -> None:
    server = spawn(detached=True, owner="test-owner-listen")
    port = int(server.identity.cmdline[-1])
    worker = server.workers[0]
    assert procs.descendants(server.pid) == [worker.pid]
    # both hold the listening socket; psutil names one process per socket
    assert procs.listeners(port) and set(procs.listeners(port)) <= {server.pid, worker.pid}
    assert procs.owner_of(server.pid) == "test-owner-listen"
    assert procs.owner_of(os.getpid()) is None
    assert procs.adopt(server.pid, ["serve", "iris_classifier:standin", "--port", str(port)]) == server.identity
    assert procs.adopt(server.pid, ["iris_classifier:other"]) is None
    assert procs.alive(server.pid) and not procs.alive(None)


def test_a_finished_child_is_not_alive(spawn: Spawn) -> None:
    server = spawn(["sleep", "600"], detached=True)
    os.kill(server.pid, signal.SIGKILL)
    until(lambda: psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE, "the child to become a zombie")
    assert not procs.alive(server.pid) and procs.Identity.of(server.pid) is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "must be an object"),
        ({"pid": "12", "create_time": 1.0, "cmdline": []}, "'pid' must be a positive integer"),
        ({"pid": 12, "create_time": "x", "cmdline": []}, "'create_time' of pid 12 must be a number"),
        ({"pid": 12, "create_time": 1.0, "cmdline": "sleep"}, "'cmdline' of pid 12 must be a list of strings"),
    ],
)
def test_identity_from_json_says_what_is_wrong(data: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        procs.Identity.from_json(data)


def test_ports_and_logs(tmp_path: Path) -> None:
    port = procs.free_port()
    assert not procs.port_in_use(port)
    assert procs.log_tail(tmp_path / "missing.log") == "(no log)"
    (tmp_path / "server.log").write_text("\n".join(f"line {i}" for i in range(30)))
    assert procs.log_tail(tmp_path / "server.log", lines=2) == "line 28\nline 29"


def test_wait_ready_reports_a_server_that_exits(spawn: Spawn, tmp_path: Path) -> None:
    server = spawn([sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
    with pytest.raises(procs.ServerError, match="exited before it became ready; last lines of .*\n.*boom"):
        procs.wait_ready(f"http://127.0.0.1:{procs.free_port()}", server.pid, tmp_path / "stand-in.log", timeout=60)


def test_a_free_port_is_below_the_ephemeral_range_and_free() -> None:
    """Ports the kernel hands out (BentoML's circus control sockets, client connections) never take a port chosen
    for a server that binds it seconds later: seen as "ZMQError: Address already in use" with servers side by side."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {procs.free_port() for _ in range(20)}
    assert len(ports) > 1, "chosen at random, so callers side by side rarely pick the same one"
    for port in ports:
        assert port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_log_tail_finds_the_traceback_behind_thousands_of_skipped_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    skipped = "INFO client error on /predict [POST]: 1 validation errors\n"
    log.write_text(
        "start\nTraceback (most recent call last):\nZeroDivisionError\n" + skipped * 5000 + "x" * 70_000 + "\n"
    )
    tail = procs.log_tail(log, 3, skip="client error on ")
    assert tail.splitlines() == ["Traceback (most recent call last):", "ZeroDivisionError", "x" * 300]
    log.write_text(skipped * 10)
    assert procs.log_tail(log, 3, skip="client error on ") == "(no lines but 'client error on' ones)"
    log.write_text("")
    assert procs.log_tail(log) == "(empty log)"
