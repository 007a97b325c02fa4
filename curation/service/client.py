"""The client side of the workspace service: channels (sockets), cursors with DuckDB's methods, transactions.

``Workspace`` holds one ``ServiceClient``. Each cursor it hands out owns one channel (one session in the service,
with its own DuckDB cursor there); closed cursors' channels are kept for reuse (a connect + hello costs ~0.2 ms, a
reused channel nothing). A cursor supports what this project calls on cursors, found by grepping curation/,
train/, distill/, studio/: ``execute``, ``executemany``, ``fetchall``, ``fetchone``, ``fetchmany``, ``description``,
``register``/``unregister`` of Arrow tables, ``sql(...).to_arrow_table()``, ``query_progress``, ``interrupt``,
``close`` and ``with``.

``execute`` returns the first rows with its answer (one round trip for the usual ``execute(...).fetchall()``); the
rest of a long result comes with the next fetch. A service that dies mid-call raises ``WorkspaceServiceLost`` (the
work in flight is not kept); the next cursor finds the dead channels, starts a new service and goes on.
"""

from __future__ import annotations

import select
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import WorkspaceServiceLost
from curation.service import launch, protocol
from curation.service.paths import ServicePaths

if TYPE_CHECKING:
    import pyarrow as pa

MAX_IDLE_CHANNELS = 8  # closed cursors' channels kept for reuse (a studio runs a handful of workers at once)
HELLO_ATTEMPTS = 20


class Channel:
    """One socket to the service: one session there. Used by one thread at a time."""

    def __init__(self, sock: socket.socket, session: int, workspace: Path) -> None:
        self.sock, self.session, self.workspace = sock, session, workspace
        self.broken = False

    def call(self, op: str, table: pa.Table | None = None, **args: Any) -> tuple[Any, pa.Table | None]:
        """Send one request and wait for its answer: (value, Arrow table or None); the service's error is raised."""
        if self.broken:
            raise self.lost()
        try:
            protocol.send(self.sock, {"op": op, **args}, table)
            reply = protocol.recv(self.sock)
        except BaseException as exc:
            # The stream is out of step (a half-sent request, an unread answer): the socket goes; the service
            # rolls back whatever this session had open.
            self.close()
            if isinstance(exc, OSError):
                raise self.lost() from None
            raise
        if "error" in reply:
            raise reply["error"]
        return reply.get("ok"), reply.get("table")

    def post(self, op: str, **args: Any) -> None:
        """Send a request that has no answer (``close``)."""
        try:
            protocol.send(self.sock, {"op": op, **args})
        except OSError:
            self.close()

    def lost(self) -> WorkspaceServiceLost:
        return WorkspaceServiceLost(
            f"the workspace service of {self.workspace} stopped while this process was using it; the statement or "
            "change in flight was not kept (run it again: a new service starts)"
        )

    def stale(self) -> bool:
        """The service closed this socket (it stopped or restarted): it never speaks unasked."""
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        self.broken = True
        with suppress(OSError):
            self.sock.close()


class ServiceClient:
    """A workspace opened through its service: channels, cursors, the write lock."""

    def __init__(self, workspace: Path, paths: ServicePaths) -> None:
        self.workspace, self.paths = workspace, paths
        self.client_id = uuid.uuid4().hex
        self._idle: list[Channel] = []
        self._lock = threading.Lock()
        self._closed = False
        self._service_pid = 0
        self._service_instance = ""
        # Held open while the workspace is: the service counts its clients by their sockets and stops when idle.
        self._keepalive = self._open_channel()

    @property
    def service_pid(self) -> int:
        """The pid of the service this client last connected to."""
        return self._service_pid

    @property
    def service_instance(self) -> str:
        """The identity of the service this client last connected to (unlike a pid, never reused)."""
        return self._service_instance

    @classmethod
    def open(cls, workspace: Path) -> ServiceClient:
        """Connect to the service of ``workspace`` (resolved), starting it if needed; ``NoSocket`` if it cannot be."""
        resolved = workspace.resolve()
        return cls(resolved, ServicePaths.for_workspace(resolved))

    def _open_channel(self) -> Channel:
        from curation.migrations import latest_version

        for _ in range(HELLO_ATTEMPTS):
            sock = launch.connect(self.workspace, self.paths)
            ch = Channel(sock, -1, self.workspace)
            try:
                info, _ = ch.call("hello", protocol=protocol.PROTOCOL, schema=latest_version(), client=self.client_id)
            except WorkspaceServiceLost:
                continue  # the service was stopping (idle) as we connected: the next connect starts another
            ch.session = int(info["session"])
            self._service_pid = int(info["pid"])
            self._service_instance = str(info.get("instance", ""))
            return ch
        raise WorkspaceServiceLost(f"the workspace service of {self.workspace} keeps closing new connections")

    def channel(self) -> Channel:
        """An idle channel, or a new one (a new service is started if the one we knew has gone)."""
        if self._closed:
            raise WorkspaceServiceLost(f"workspace {self.workspace} is closed")
        with self._lock:
            while self._idle:
                ch = self._idle.pop()
                if not ch.stale():
                    return ch
                ch.close()
            if self._keepalive.stale():
                self._keepalive.close()
                self._keepalive = self._open_channel()
        return self._open_channel()

    def release(self, ch: Channel, *, reset: bool = True) -> None:
        """Give a channel back; ``reset`` drops its session's cursor (temp tables, registered views) as close does."""
        if reset and not ch.broken:
            ch.post("close")
        with self._lock:
            if not ch.broken and not self._closed and len(self._idle) < MAX_IDLE_CHANNELS:
                self._idle.append(ch)
                return
        ch.close()

    def cursor(self) -> RemoteCursor:
        """A new cursor (its own session in the service)."""
        return RemoteCursor(self, self.channel())

    def _owner(self) -> str:
        # The write lock is re-entrant per thread, as threading.RLock is in-process: a transaction inside
        # exclusive() in the same thread goes on; another thread (or process) waits.
        return f"{self.client_id}:{threading.get_ident()}"

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the workspace's write lock across several transactions of this thread."""
        ch = self.channel()
        try:
            ch.call("lock", owner=self._owner())
        except BaseException:
            self.release(ch, reset=False)
            raise
        try:
            yield
        finally:
            with suppress(WorkspaceServiceLost):
                ch.call("unlock")
            self.release(ch, reset=False)

    @contextmanager
    def transaction(self) -> Iterator[RemoteCursor]:
        """BEGIN under the write lock; COMMIT on success, ROLLBACK on any exception (or the socket's loss)."""
        cur = self.cursor()
        try:
            cur.channel.call("begin", owner=self._owner())
        except WorkspaceServiceLost:
            # An idle channel can pass its staleness check while a killed service's threads are still dying (its
            # sockets close with the last thread): nothing was begun, so begin once more on a fresh channel, which
            # starts a new service if needed.
            cur.close()
            cur = self.cursor()
            try:
                cur.channel.call("begin", owner=self._owner())
            except BaseException:
                cur.close()
                raise
        except BaseException:
            cur.close()
            raise
        try:
            yield cur
        except BaseException:
            if not cur.channel.broken:
                with suppress(Exception):  # the first error is the one to report; the service releases the lock
                    cur.channel.call("rollback")
            cur.close()
            raise
        try:
            cur.channel.call("commit")
        finally:
            cur.close()

    def control(self, op: str, **args: Any) -> Any:
        """A request about another session (progress, interrupt), on a channel of its own."""
        ch = self.channel()
        try:
            return ch.call(op, **args)[0]
        finally:
            self.release(ch, reset=False)

    def interrupt(self) -> None:
        """Interrupt every statement this client's cursors are running."""
        self.control("interrupt_client", client=self.client_id)

    def close(self) -> None:
        """Close every channel; the service rolls back anything left open and stops once no client remains."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for ch in [*idle, self._keepalive]:
            ch.close()


class RemoteCursor:
    """A DuckDB cursor in the service, with the methods of ``duckdb.DuckDBPyConnection`` this project uses."""

    def __init__(self, client: ServiceClient, channel: Channel) -> None:
        self.client, self.channel = client, channel
        self.description: list[tuple[Any, ...]] | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._done = True
        self._closed = False

    def _take(self, reply: dict[str, Any]) -> RemoteCursor:
        self.description, self._rows, self._done = reply["description"], reply["rows"], reply["done"]
        return self

    def execute(self, query: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> RemoteCursor:
        """Run one statement in the service; its first rows come back with the answer."""
        return self._take(self.channel.call("execute", sql=query, params=parameters)[0])

    def executemany(self, query: str, parameters: Sequence[Any] | None = None) -> RemoteCursor:
        """Run a statement once per parameter set."""
        return self._take(self.channel.call("executemany", sql=query, params=parameters)[0])

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        if not self._done:
            rows += self.channel.call("fetchall")[0]
            self._done = True
        return rows

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        while len(self._rows) < size and not self._done:
            more = self.channel.call("fetchmany", size=max(size, 2048))[0]
            self._rows += more
            self._done = len(more) < max(size, 2048)
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchmany(1)
        return rows[0] if rows else None

    def register(self, view_name: str, python_object: Any) -> RemoteCursor:
        """Make an Arrow table queryable as ``view_name`` in this cursor's session (sent as Arrow IPC)."""
        import pyarrow as pa

        if not isinstance(python_object, pa.Table):
            raise TypeError(f"the workspace service registers Arrow tables, not {type(python_object).__name__}")
        self.channel.call("register", python_object, name=view_name)
        return self

    def unregister(self, view_name: str) -> RemoteCursor:
        self.channel.call("unregister", name=view_name)
        return self

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> RemoteRelation:
        """A query to read as Arrow (``.to_arrow_table()``) or rows (``.fetchall()``)."""
        return RemoteRelation(self, query, params)

    def query_progress(self) -> float:
        """Percent done of the statement this cursor runs (-1 when none), asked from another thread."""
        return float(self.client.control("progress", session=self.channel.session))

    def interrupt(self) -> None:
        """Interrupt the statement this cursor runs (from another thread)."""
        self.client.control("interrupt", session=self.channel.session)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.release(self.channel)

    def __enter__(self) -> RemoteCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteRelation:
    """``cursor.sql(query, params)``: run when read."""

    def __init__(self, cur: RemoteCursor, query: str, params: Sequence[Any] | dict[str, Any] | None) -> None:
        self.cur, self.query, self.params = cur, query, params

    def to_arrow_table(self) -> pa.Table:
        """The whole result as one Arrow table (sent as Arrow IPC)."""
        _, table = self.cur.channel.call("arrow", sql=self.query, params=self.params)
        assert table is not None
        return table

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.cur.execute(self.query, self.params).fetchall()
