"""The service's life: started on demand, stopped when idle, clients and the service itself killed with -9."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest

from curation.errors import WorkspaceLockedError, WorkspaceServiceLost
from curation.service.paths import MAX_SOCKET_PATH, ServicePaths
from curation.workspace import Workspace
from tests.service.conftest import run_py, service_pid, wait_gone

pytestmark = pytest.mark.timeout(180)


def _kill(proc) -> None:  # type: ignore[no-untyped-def]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_socket_is_private_and_short(shared: tuple[Path, Workspace], tmp_path: Path) -> None:
    path, _ = shared
    paths = ServicePaths.for_workspace(path)
    mode = os.stat(paths.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(paths.socket.parent).st_mode) == 0o700
    deep = tmp_path.joinpath(*["d" * 60] * 5, "w.duckdb")  # a workspace path far over the socket limit
    assert len(os.fsencode(ServicePaths.for_workspace(deep).socket)) <= MAX_SOCKET_PATH
    # Every name of the same file meets the same service.
    link = tmp_path / "link.duckdb"
    link.symlink_to(path)
    assert ServicePaths.for_workspace(link) == paths


def test_killed_client_loses_only_its_uncommitted_work(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    events = ws.scalar("SELECT count(*) FROM review_events")
    holder = run_py("tests.service.clients", "hold", str(path))
    assert holder.stdout is not None and holder.stdout.readline().strip() == "in transaction"
    _kill(holder)
    # Its committed setting stays, its open transaction is gone, and the write lock is free again.
    assert ws.get_setting("committed") == 1 and ws.get_setting("uncommitted") is None
    assert ws.scalar("SELECT count(*) FROM review_events") == events
    ws.set_setting("after", 2)
    assert ws.get_setting("after") == 2


def test_killed_client_mid_statement_frees_the_lock_at_once(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    writer = run_py("tests.service.clients", "long-write", str(path))
    assert writer.stdout is not None and writer.stdout.readline().strip() == "running"
    time.sleep(0.5)  # the statement has started (it would run for minutes)
    _kill(writer)
    started = time.monotonic()
    ws.set_setting("next", 1)  # the service saw the client go, interrupted its statement, rolled back
    assert time.monotonic() - started < 20


def test_dead_holder_of_the_write_lock_leaves_no_half_import(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    holder = run_py("tests.service.clients", "exclusive", str(path))
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    # The lock is held across transactions: another writer waits...
    assert ws.scalar("SELECT count(*) FROM import_batches WHERE status = 'importing'") == 1
    _kill(holder)
    # ...and when the holder dies its half-done import goes before the next writer writes.
    ws.set_setting("next", 1)
    assert ws.scalar("SELECT count(*) FROM import_batches WHERE status = 'importing'") == 0


def test_writers_in_other_processes_wait_for_exclusive(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    with ws.exclusive():
        writer = run_py("tests.service.clients", "review", str(path), "1", "0")
        assert writer.stdout is not None and writer.stdout.readline().strip() == "open"
        time.sleep(1.0)
        assert writer.poll() is None  # waiting for the lock
        assert ws.scalar("SELECT count(*) FROM review_events") == 0
        ws.set_setting("mine", 1)  # this thread's own transactions go on (re-entrant)
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert ws.scalar("SELECT count(*) FROM review_events") == 1


def test_killed_service_restarts_on_next_open_and_clients_reconnect(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    ws.set_setting("kept", 7)
    old = ws._backend.service_pid  # type: ignore[union-attr]
    cur = ws.cursor()
    os.kill(old, signal.SIGKILL)
    assert wait_gone(old)
    # A statement on a socket of the dead service fails clearly; the same workspace object then carries on.
    with pytest.raises(WorkspaceServiceLost, match="stopped while this process was using it"):
        cur.execute("SELECT 1")
    cur.close()
    assert ws.get_setting("kept") == 7  # reconnected: a new service replayed the WAL
    new = ws._backend.service_pid  # type: ignore[union-attr]
    assert new != old
    with Workspace.open(path) as other:  # and a new client meets that new service
        assert other._backend.service_pid == new  # type: ignore[union-attr]
        assert other.get_setting("kept") == 7


def test_transaction_in_flight_when_the_service_dies(shared: tuple[Path, Workspace]) -> None:
    _, ws = shared
    with pytest.raises(WorkspaceServiceLost):
        with ws.transaction() as cur:
            cur.execute("INSERT INTO settings VALUES ('lost', '1', now())")
            os.kill(ws._backend.service_pid, signal.SIGKILL)  # type: ignore[union-attr]
            wait_gone(ws._backend.service_pid)  # type: ignore[union-attr]
            cur.execute("INSERT INTO settings VALUES ('lost2', '1', now())")
    assert ws.get_setting("lost") is None


def test_idle_service_stops(tmp_path: Path, served: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILL_SERVICE_IDLE_S", "0.5")
    path = tmp_path / "w.duckdb"
    with Workspace.open(path) as ws:
        pid = ws._backend.service_pid  # type: ignore[union-attr]
        served.append(pid)
        time.sleep(1.5)
        assert ws.scalar("SELECT 1") == 1  # a connected client keeps it running, however idle
        assert ws._backend.service_pid == pid  # type: ignore[union-attr]
    assert wait_gone(pid, timeout=10)
    files = ServicePaths.for_workspace(path)
    assert not files.socket.exists() and not files.lock.exists() and not files.log.exists()  # nothing left behind
    assert service_pid(path) is None
    with Workspace.open(path) as ws:  # the file is closed and checkpointed: it opens in-process too
        served.append(ws._backend.service_pid)  # type: ignore[union-attr]
    wait_gone(served[-1])
    Workspace.open(path, service=False).close()


def test_file_held_in_process_is_refused_clearly(tmp_path: Path, served: list[int]) -> None:
    path = tmp_path / "w.duckdb"
    Workspace.open(path, service=False).close()
    holder = run_py("tests.service.clients", "hold-file", str(path))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(WorkspaceLockedError, match="open in another process"):
            Workspace.open(path)
    finally:
        _kill(holder)


def test_in_process_mode_goes_through_a_running_service(
    shared: tuple[Path, Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, ws = shared
    monkeypatch.setenv("DISTILL_SERVICE", "off")  # this process would open the file itself, but the service holds it
    with Workspace.open(path) as other:
        assert other.served and other._backend.service_pid == ws._backend.service_pid  # type: ignore[union-attr]
    with pytest.raises(WorkspaceLockedError):  # a caller that must hold the file alone still cannot
        Workspace.open(path, service=False)
