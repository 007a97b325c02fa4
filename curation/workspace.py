"""The workspace: one DuckDB file plus an artifacts folder beside it.

``Workspace`` is the only way to the DuckDB connection: held by this process (``InProcess``) or by the workspace
service that every process of the workspace shares (``curation.service``). Writers go through ``transaction()``
(serialised by a lock, BEGIN/COMMIT, rollback on any exception, including cancellation); readers in other threads
take their own ``cursor()`` because one DuckDB connection shared by threads is serialised and a half-fetched result
blocks the next statement.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from curation.errors import UserError, WorkspaceLockedError
from curation.faults import describe
from curation.migrations import latest_version, migrate
from curation.service import service_mode
from curation.workspace_file import check_after_open, check_before_open

if TYPE_CHECKING:
    from curation.service.client import ServiceClient

DEFAULT_WORKSPACE = "distill.duckdb"


def default_workspace_path() -> Path:
    """``$DISTILL_WORKSPACE`` if set, else ``./distill.duckdb``."""
    return Path(os.environ.get("DISTILL_WORKSPACE") or DEFAULT_WORKSPACE)


def artifacts_dir_for(path: str | os.PathLike[str]) -> Path:
    """The artifacts folder of the workspace file ``path`` (``<stem>.artifacts`` beside it), open or not."""
    p = Path(path)
    return p.with_name(p.stem + ".artifacts")


def _running_service(p: Path) -> ServiceClient | None:
    """A client of the service that holds ``p`` now, or None when none answers (none is started)."""
    from curation.service.client import ServiceClient
    from curation.service.launch import dial
    from curation.service.paths import NoSocket, ServicePaths

    try:
        dial(ServicePaths.for_workspace(p).socket).close()
    except (NoSocket, OSError):
        return None
    return ServiceClient.open(p)


class InProcess:
    """The DuckDB connection held by this process (``DISTILL_SERVICE=off``, tests, and the service itself)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._write_lock = threading.RLock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._write_lock:
            yield

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._write_lock:
            cur = self.con.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                cur.close()
                raise
            try:
                cur.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (a full disk) leaves nothing of the transaction; end it if DuckDB has not.
                try:
                    cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise
            finally:
                cur.close()

    def interrupt(self) -> None:
        self.con.interrupt()

    def close(self) -> None:
        try:
            self.con.execute("CHECKPOINT")
        except duckdb.Error:
            pass  # a failed checkpoint leaves the WAL, which DuckDB replays on the next open
        self.con.close()


class Workspace:
    """An open workspace. Use as a context manager or call ``close()``.

    Opened through the workspace service (``curation.service``: several processes at once) or in-process (this
    process alone holds the file); both give the same methods, and cursors with the same DuckDB methods.
    """

    def __init__(self, path: Path, backend: InProcess | ServiceClient) -> None:
        self.path = path
        self._backend = backend
        self._closed = False

    # -- opening -------------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str] | None = None, *, create: bool = True, service: bool | None = None
    ) -> Workspace:
        """Open (and, if ``create``, create) the workspace at ``path``, migrating its schema forward.

        ``service``: True through the workspace service, False in-process, None as ``$DISTILL_SERVICE`` says
        (``auto``: the service, in-process where no socket can be made; see ``curation.service``).
        """
        p = Path(path) if path is not None else default_workspace_path()
        if p.is_dir():
            raise UserError(f"{p} is a directory; a workspace is a .duckdb file")
        if not p.exists() and not create:
            others = sorted(q.name for q in p.parent.glob("*.duckdb")) if p.parent.is_dir() else []
            hint = (
                f"; workspaces here: {', '.join(others[:5])} (pick one with -w NAME or $DISTILL_WORKSPACE)"
                if others
                else ""
            )
            raise UserError(f"no workspace at {p} (run `distill import FILE -w {p}` to create one){hint}")
        if not p.exists() and not p.parent.exists():
            raise UserError(f"cannot create workspace {p}: folder {p.parent} does not exist")
        if p.exists():
            check_before_open(p)
        mode = service_mode(service)
        if mode != "off":
            from curation.service.client import ServiceClient
            from curation.service.paths import NoSocket

            try:
                ws = cls(p, ServiceClient.open(p))
            except NoSocket as exc:
                if mode == "on":
                    raise UserError(f"cannot reach a workspace service for {p}: {exc}") from None
            else:
                ws._make_artifacts_dir()
                return ws
        try:
            return cls._open_in_process(p)
        except WorkspaceLockedError:
            running = _running_service(p) if service is None else None  # off by $DISTILL_SERVICE, not by the caller
            if running is None:
                raise
            return cls(p, running)  # the file is held by its service: go through it rather than fail

    @classmethod
    def _open_in_process(cls, p: Path) -> Workspace:
        try:
            # An absolute path: DuckDB gives names such as ':memory:' or 'md:x' a meaning other than a file.
            con = duckdb.connect(str(p.resolve()))
        except duckdb.Error as exc:
            msg = str(exc)
            if "Could not set lock" in msg or "Conflicting lock" in msg:  # (not any "lock": a damaged "block")
                raise WorkspaceLockedError(
                    f"workspace {p} is open in another process; close it there first ({msg.splitlines()[0]})"
                ) from None
            raise UserError(describe(exc, workspace=p) or f"cannot open workspace {p}: {msg.splitlines()[0]}") from None
        ws = cls(p, InProcess(con))
        try:
            check_after_open(con, p)
            con.execute("SET TimeZone = 'UTC'")  # timestamps are stored as UTC wall time
            # FSST string compression costs ~30% of an import's write time and saves ~2% on JSON columns (measured
            # on bench/import_bench.py data); dictionary and the other methods stay on.
            con.execute("SET disabled_compression_methods = 'fsst'")
            migrate(con)
            ws.discard_interrupted_imports()
        except duckdb.Error as exc:
            con.close()
            message = describe(exc, workspace=p)
            if message is None:
                raise
            raise UserError(message) from None
        except BaseException:
            con.close()
            raise
        ws._make_artifacts_dir()
        return ws

    def _make_artifacts_dir(self) -> None:
        try:
            self.artifacts_dir.mkdir(exist_ok=True)
        except OSError:
            pass  # a read-only folder: reading works; whatever writes an artifact makes its folder and says why not

    def discard_interrupted_imports(self) -> None:
        """Remove batches left half-numbered (status 'importing'), records and all.

        A fast import commits its rows first and numbers them in a second, short transaction (see
        ``curation.importing.load``); a process killed in between, or a failure while numbering, leaves a batch no
        one can use, so it goes. In-process this runs on open; the service runs it when it starts and when a client
        that held the write lock dies.
        """
        with self.transaction() as cur:
            stale = "SELECT batch_id FROM import_batches WHERE status = 'importing'"
            if cur.execute(f"SELECT count(*) FROM ({stale})").fetchall()[0][0]:
                cur.execute(f"DELETE FROM records WHERE batch_id IN ({stale})")
                cur.execute(f"DELETE FROM quarantine WHERE batch_id IN ({stale})")
                cur.execute("DELETE FROM import_batches WHERE status = 'importing'")

    @property
    def artifacts_dir(self) -> Path:
        """Folder beside the DuckDB file for models, exports and run outputs (``<stem>.artifacts``)."""
        return artifacts_dir_for(self.path)

    @property
    def served(self) -> bool:
        """Whether this workspace is reached through its service (else this process holds the file)."""
        return not isinstance(self._backend, InProcess)

    def raw_connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection of an in-process workspace (the service makes its sessions' cursors from it)."""
        if not isinstance(self._backend, InProcess):
            raise RuntimeError("a workspace reached through its service has no connection in this process")
        return self._backend.con

    def close(self) -> None:
        """In-process: checkpoint (fold the WAL into the file) and close. Served: close this client's sockets
        (the service checkpoints when it stops)."""
        if self._closed:
            return
        self._closed = True
        self._backend.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- access --------------------------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor for reads, safe to use from one other thread. Close it when done.

        Served, it is a ``curation.service.client.RemoteCursor`` with the same methods.
        """
        return self._backend.cursor()  # type: ignore[return-value]

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold off every other writer of this workspace for a run of transactions (this thread's go on).

        The fast importer commits its rows and numbers them in a second transaction; no other write may see or
        touch them in between. Transactions opened inside still work (the lock is re-entrant per thread). Served,
        the lock is the service's: writers in other processes wait too.
        """
        with self._backend.exclusive():
            yield

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run writes atomically: yields a cursor inside BEGIN; COMMIT on success, ROLLBACK on any exception.

        Writers are serialised (in-process by a lock, served by the service's lock held from BEGIN to COMMIT).
        """
        with self._backend.transaction() as cur:
            yield cur  # type: ignore[misc]

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read query on a fresh cursor and fetch every row."""
        cur = self._backend.cursor()
        try:
            return cur.execute(sql, params).fetchall()
        finally:
            cur.close()

    def query_dicts(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Like ``query`` but each row is a dict keyed by column name."""
        cur = self._backend.cursor()
        try:
            res = cur.execute(sql, params)
            assert res.description is not None
            names = [d[0] for d in res.description]
            return [dict(zip(names, row, strict=True)) for row in res.fetchall()]
        finally:
            cur.close()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """First column of the first row, or None."""
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def interrupt(self) -> None:
        """Interrupt long statements: in-process, the one on the main connection; served, every statement this
        process's cursors are running."""
        self._backend.interrupt()

    # -- schema and settings -------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version this workspace is at."""
        return int(self.scalar("SELECT max(version) FROM schema_migrations"))

    @staticmethod
    def code_schema_version() -> int:
        """The schema version this code writes."""
        return latest_version()

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A workspace setting (JSON value), or ``default``."""
        row = self.query("SELECT value FROM settings WHERE key = ?", [key])
        return json.loads(row[0][0]) if row else default

    def set_setting(self, key: str, value: Any, cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """Store a workspace setting as JSON (in the caller's transaction when ``cur`` is given)."""
        sql = "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?, ?, now())"
        if cur is not None:
            cur.execute(sql, [key, json.dumps(value)])
            return
        with self.transaction() as tx:
            tx.execute(sql, [key, json.dumps(value)])

    def set_settings(self, values: dict[str, Any]) -> None:
        """Store several settings in one transaction (all or none)."""
        with self.transaction() as cur:
            for key, value in values.items():
                self.set_setting(key, value, cur)

    def table_exists(self, name: str) -> bool:
        """Whether a table (or view) with this name exists in the main schema."""
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
                [name],
            )
        )
