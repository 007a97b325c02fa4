"""Helpers around one long DuckDB statement: progress and cancel while it runs, and a memory cap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from curation.importing import sql as S
from curation.progress import ProgressFn, report
from curation.workspace import Workspace


class Watch:
    """Poll a running statement's progress for the caller, and interrupt it when cancel is set."""

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        detail: str = "",
    ) -> None:
        self.cur, self.progress, self.cancel, self.detail = cur, progress, cancel, detail
        self.stop = threading.Event()
        self.cancelled = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            if self.cancel is not None and self.cancel.is_set():
                self.cancelled = True
                self.cur.interrupt()
                return
            if self.progress is not None:
                pct = self.cur.query_progress()
                if pct >= 0:
                    try:
                        report(self.progress, None, "importing", pct, 100.0, self.detail)
                    except Exception:  # progress consumers must never break the import
                        pass

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@contextmanager
def memory_limit(ws: Workspace, limit: str) -> Iterator[None]:
    """Cap DuckDB's memory during a fast import, so a big file spills to disk instead of growing the process."""
    cur = ws.cursor()
    try:
        before = cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        cur.execute(f"SET memory_limit = {S.sql_str(limit)}")
        try:
            yield
        finally:
            cur.execute(f"SET memory_limit = {S.sql_str(before)}")
    finally:
        cur.close()
