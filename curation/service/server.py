"""The workspace service process: owns the workspace's DuckDB connection and serves sessions on a Unix socket.

One thread per client socket (a session) with its own DuckDB cursor, made on first use: DuckDB runs statements of
several cursors at once and releases the GIL while it does, so readers never wait for a writer (MVCC). Writers
take ``WriteLock`` from BEGIN to COMMIT. A socket that closes (its process exited or was killed) ends the session:
its open transaction is rolled back and its holds on the lock released; when a dead client held the lock across
transactions (``exclusive()``: the fast import between its two), half-imported batches are discarded before the
next writer goes (``Workspace.discard_interrupted_imports``), as the next open did in-process.

The service stops after ``idle`` seconds without any session, or on SIGTERM: it stops listening, removes the
socket, ends the sessions (rolling back), checkpoints and closes DuckDB, then drops its flock.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import duckdb

from curation.service import protocol
from curation.service.writelock import WriteLock, is_write
from curation.workspace import Workspace

PREFETCH = 2048  # rows sent with an execute's answer; more come with the next fetch


# This service process, told apart from a later one that may get the same pid (pids wrap on busy machines).
INSTANCE = uuid.uuid4().hex


class Session:
    """One client socket: a DuckDB cursor, its registered tables, its holds on the write lock."""

    def __init__(self, service: Service, sock: socket.socket, number: int) -> None:
        self.service, self.sock, self.number = service, sock, number
        self.client = ""
        self.cur: duckdb.DuckDBPyConnection | None = None
        self.running = False  # a statement is executing (interrupt only then)
        self.in_transaction = False
        self.holds = 0
        self.registered: dict[str, Any] = {}  # DuckDB reads registered Arrow tables in place: keep them alive

    # -- the loop --------------------------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while True:
                try:
                    msg = protocol.recv(self.sock)
                except OSError:
                    return  # the client closed its socket or died
                op = msg.pop("op")
                if op == "close":  # the client's cursor closed: no answer, the next request may follow at once
                    self.reset()
                    continue
                table = None
                try:
                    value = getattr(self, "op_" + op)(**msg)
                    if isinstance(value, ArrowResult):
                        value, table = None, value.table
                    reply: dict[str, Any] = {"ok": value}
                except Exception as exc:
                    reply, table = protocol.error_reply(exc), None
                try:
                    protocol.send(self.sock, reply, table)
                except OSError:
                    return
        finally:
            self.end()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        if self.cur is None:
            self.cur = self.service.new_cursor()
        return self.cur

    def reset(self) -> None:
        """Back to a fresh session: a new DuckDB cursor next time (temp tables and views go with the old one)."""
        if self.in_transaction:
            self.op_rollback()
        if self.cur is not None:
            self.cur.close()
            self.cur = None
        self.registered.clear()

    def end(self) -> None:
        """The socket closed: roll back, give up the lock (as a dead owner), close the cursor."""
        if self.in_transaction:
            self.in_transaction = False
            try:
                self.cursor().execute("ROLLBACK")
            except duckdb.Error:
                pass
        while self.holds:
            self.holds -= 1
            self.service.lock.release(abandoned=True)
        if self.cur is not None:
            self.cur.close()
        try:
            self.sock.close()
        except OSError:
            pass
        self.service.forget(self)

    def _statement(self, run: Callable[[duckdb.DuckDBPyConnection], Any], sql: str | None = None) -> Any:
        """Run a statement on this session's cursor. A write outside a transaction (``sql`` given) is serialised
        with the other clients' writes as a transaction would be: every write goes through ``Workspace.transaction``
        by rule, and this keeps a stray one from racing a reviewer's transaction (a DuckDB conflict error)."""
        cur = self.cursor()
        locked = sql is not None and not self.in_transaction and self.service.writes(sql)
        if locked and not self.service.lock.acquire_for_statement(self.client):
            locked = False
        self.running = True
        try:
            return run(cur)
        finally:
            self.running = False
            if locked:
                self.service.lock.release()

    # -- requests -------------------------------------------------------------------------------------------------

    def op_hello(self, protocol: int, schema: int, client: str) -> dict[str, Any]:
        from curation.errors import UserError
        from curation.service.protocol import PROTOCOL

        ours = Workspace.code_schema_version()
        if protocol != PROTOCOL or schema != ours:
            raise UserError(
                f"workspace {self.service.ws.path} is served by another version of Distill Studio (service pid "
                f"{os.getpid()}, schema v{ours}, protocol {PROTOCOL}); close the programs using it and try again"
            )
        self.client = client
        return {"pid": os.getpid(), "instance": INSTANCE, "session": self.number}

    def op_execute(self, sql: str, params: Any = None) -> dict[str, Any]:
        return self._prefetch(self._statement(lambda cur: cur.execute(sql, params), sql))

    def op_executemany(self, sql: str, params: Any = None) -> dict[str, Any]:
        return self._prefetch(self._statement(lambda cur: cur.executemany(sql, params), sql))

    def _prefetch(self, cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        if cur.description is None:
            return {"description": None, "rows": [], "done": True}
        # DuckDBPyType does not pickle; its text names the type (duckdb.sqltype(text) rebuilds it if ever needed).
        desc = [(d[0], str(d[1]), *d[2:]) for d in cur.description]
        rows = cur.fetchmany(PREFETCH)
        return {"description": desc, "rows": rows, "done": len(rows) < PREFETCH}

    def op_fetchall(self) -> list[tuple[Any, ...]]:
        return self._statement(lambda cur: cur.fetchall())

    def op_fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return self._statement(lambda cur: cur.fetchmany(size))

    def op_arrow(self, sql: str, params: Any = None) -> ArrowResult:
        return ArrowResult(self._statement(lambda cur: cur.sql(sql, params=params).to_arrow_table(), sql))

    def op_register(self, name: str, table: Any) -> None:
        self.cursor().register(name, table)
        self.registered[name] = table

    def op_unregister(self, name: str) -> None:
        self.cursor().unregister(name)
        self.registered.pop(name, None)

    def op_begin(self, owner: str) -> None:
        self.service.lock.acquire(owner)
        self.holds += 1
        try:
            self.cursor().execute("BEGIN TRANSACTION")
        except BaseException:
            self._release()
            raise
        self.in_transaction = True

    def op_commit(self) -> None:
        self.in_transaction = False
        try:
            self.cursor().execute("COMMIT")
        except BaseException:
            # A failed COMMIT (a full disk) leaves nothing of the transaction; end it if DuckDB has not.
            try:
                self.cursor().execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        finally:
            self._release()

    def op_rollback(self) -> None:
        self.in_transaction = False
        try:
            self.cursor().execute("ROLLBACK")
        finally:
            self._release()

    def op_lock(self, owner: str) -> None:
        self.service.lock.acquire(owner)
        self.holds += 1

    def op_unlock(self) -> None:
        self._release()

    def _release(self) -> None:
        if self.holds:
            self.holds -= 1
            self.service.lock.release()

    def op_progress(self, session: int) -> float:
        other = self.service.session(session)
        cur = other.cur if other is not None else None
        return float(cur.query_progress()) if cur is not None and other is not None and other.running else -1.0

    def op_interrupt(self, session: int) -> None:
        other = self.service.session(session)
        if other is not None and other.running and other.cur is not None:
            other.cur.interrupt()

    def op_interrupt_client(self, client: str) -> None:
        for other in self.service.sessions_of(client):
            if other.running and other.cur is not None:
                other.cur.interrupt()


class ArrowResult:
    """A request's answer that travels as Arrow."""

    def __init__(self, table: Any) -> None:
        self.table = table


class Service:
    """The sessions of one workspace, the write lock, and the idle clock."""

    def __init__(self, ws: Workspace, listener: socket.socket, socket_path: str, idle_s: float) -> None:
        self.ws, self.listener, self.socket_path, self.idle_s = ws, listener, socket_path, idle_s
        self.lock = WriteLock(on_abandoned=ws.discard_interrupted_imports)
        self._sessions: dict[int, Session] = {}
        self._state = threading.Lock()
        self._numbers = 0
        self._idle_since = time.monotonic()
        self._stop = threading.Event()
        self._writes: dict[str, bool] = {}  # statement text -> may write (``writes``)
        self._parsing: duckdb.DuckDBPyConnection | None = None

    def writes(self, sql: str) -> bool:
        """Whether ``sql`` may change what is stored (parsed once per distinct text: ~0.1-0.7 ms a parse)."""
        known = self._writes.get(sql)
        if known is None:
            try:
                with self._state:  # (a DuckDB connection object is not for several threads at once)
                    kinds = [st.type for st in self._parser().extract_statements(sql)]
            except duckdb.Error:
                kinds = []  # it fails to parse: running it raises the same error, and writes nothing
            known = is_write(kinds)
            if len(self._writes) >= 4096:
                self._writes.clear()
            self._writes[sql] = known
        return known

    def _parser(self) -> duckdb.DuckDBPyConnection:
        if self._parsing is None:
            self._parsing = self.ws.raw_connection().cursor()
        return self._parsing

    def new_cursor(self) -> duckdb.DuckDBPyConnection:
        with self._state:
            return self.ws.raw_connection().cursor()

    def session(self, number: int) -> Session | None:
        with self._state:
            return self._sessions.get(number)

    def sessions_of(self, client: str) -> list[Session]:
        with self._state:
            return [s for s in self._sessions.values() if s.client == client]

    def forget(self, session: Session) -> None:
        with self._state:
            self._sessions.pop(session.number, None)
            if not self._sessions:
                self._idle_since = time.monotonic()

    def serve(self) -> None:
        """Accept sessions until idle for ``idle_s`` or SIGTERM; then shut down."""
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        self.listener.settimeout(min(0.5, max(0.05, self.idle_s / 4)))
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                with self._state:
                    if not self._sessions and time.monotonic() - self._idle_since >= self.idle_s:
                        break
                self._interrupt_orphans()
                continue
            conn.settimeout(None)
            with self._state:
                self._numbers += 1
                s = Session(self, conn, self._numbers)
                self._sessions[s.number] = s
            threading.Thread(target=s.run, name=f"session-{s.number}", daemon=True).start()
        self.shutdown()

    def _interrupt_orphans(self) -> None:
        """Interrupt statements whose client has gone: a client waiting for an answer sends nothing, so a socket
        that reads as ready while its statement runs was closed (a killed import would otherwise run to its end,
        holding the write lock, before its session rolls it back)."""
        with self._state:
            running = [s for s in self._sessions.values() if s.running and s.cur is not None]
        if not running:
            return
        try:
            ready = select.select([s.sock for s in running], [], [], 0)[0]
        except (OSError, ValueError):
            return
        for s in running:
            if s.sock in ready and s.running and s.cur is not None:
                s.cur.interrupt()

    def shutdown(self) -> None:
        """Stop listening (a client connecting now starts a new service), end the sessions, close DuckDB."""
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass
        self.listener.close()
        with self._state:
            sessions = list(self._sessions.values())
        for s in sessions:
            if s.running and s.cur is not None:
                s.cur.interrupt()
            try:
                s.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._state:
                if not self._sessions:
                    break
            time.sleep(0.02)
        if self._parsing is not None:
            self._parsing.close()
        self.ws.close()
