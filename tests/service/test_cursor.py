"""Cursors through the service behave as DuckDB's own: every method the project uses, errors, progress, cancel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from curation.browse import RecordFilter, count_records
from curation.errors import Cancelled, UserError
from curation.importing import import_file
from curation.progress import Progress
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["in-process", "service"])
def either(request: pytest.FixtureRequest, tmp_path: Path, served: list[int]) -> Iterator[Workspace]:
    """The same workspace API in both modes."""
    ws = Workspace.open(tmp_path / "w.duckdb", service=request.param == "service")
    assert ws.served == (request.param == "service")
    if ws.served:
        served.append(ws._backend.service_pid)  # type: ignore[union-attr]
    yield ws
    ws.close()


def test_cursor_methods(either: Workspace) -> None:
    ws = either
    cur = ws.cursor()
    with cur:
        assert cur.execute("SELECT 1 AS a, 'x' AS b").description[0][0] == "a"  # type: ignore[index]
        assert [d[0] for d in cur.execute("SELECT 1 AS a, 'x' AS b").description] == ["a", "b"]  # type: ignore[union-attr]
        cur.execute("SELECT * FROM range(5000) t(i) ORDER BY i")  # more than one answer's worth of rows
        assert cur.fetchone() == (0,)
        assert cur.fetchmany(3) == [(1,), (2,), (3,)]
        rest = cur.fetchall()
        assert len(rest) == 4996 and rest[-1] == (4999,)
        assert cur.execute("SELECT ?::INT + $1::INT", [2]).fetchall() == [(4,)]
        cur.execute("CREATE TEMP TABLE t (a INT, b VARCHAR)")
        cur.executemany("INSERT INTO t VALUES (?, ?)", [[1, "x"], [2, "y"]])
        table = pa.table({"a": pa.array([2, 3], pa.int64())})
        cur.register("_arrow", table)
        assert cur.execute("SELECT count(*) FROM t JOIN _arrow USING (a)").fetchall() == [(1,)]
        got = cur.sql("SELECT a, a * $k AS b FROM _arrow ORDER BY a", params={"k": 10}).to_arrow_table()
        assert got.to_pydict() == {"a": [2, 3], "b": [20, 30]}
        cur.unregister("_arrow")
        with pytest.raises(duckdb.CatalogException):
            cur.execute("SELECT * FROM _arrow")
    # A new cursor is a new connection: the temp table went with the old one.
    with pytest.raises(duckdb.CatalogException):
        ws.query("SELECT * FROM t")
    assert ws.query_dicts("SELECT 1 AS one, [1, 2] AS l, {'k': 'v'} AS s") == [{"one": 1, "l": [1, 2], "s": {"k": "v"}}]


def test_transactions_and_errors(either: Workspace) -> None:
    ws = either
    with pytest.raises(RuntimeError), ws.transaction() as cur:
        cur.execute("INSERT INTO settings VALUES ('x', '1', now())")
        raise RuntimeError("boom")
    assert ws.get_setting("x") is None
    with pytest.raises(duckdb.ConstraintException), ws.transaction() as cur:
        cur.execute("INSERT INTO settings VALUES ('y', '1', now())")
        cur.execute("INSERT INTO settings VALUES ('y', '2', now())")
    assert ws.get_setting("y") is None
    with ws.exclusive(), ws.exclusive(), ws.transaction() as cur:  # re-entrant in one thread
        cur.execute("INSERT INTO settings VALUES ('z', '1', now())")
    assert ws.get_setting("z") == 1
    with pytest.raises(
        UserError, match="bad WHERE clause: Binder Error"
    ):  # a user's bad WHERE keeps its one-line message
        count_records(ws, RecordFilter(where="no_such_column = 1"))


# Served only: in-process, tests/foundation/test_fast_import.py checks the progress and tests/studio/test_failures.py
# the cancel (this test took ~10 s of CPU per mode).
@pytest.mark.parametrize("either", ["service"], indirect=True)
def test_import_progress_and_cancel(either: Workspace, tmp_path: Path) -> None:
    ws = either
    n = 40_000
    big = write_jsonl(tmp_path / "big.jsonl", [log_record(f"ticket {i}", logprobs=[-0.01] * 30) for i in range(n)])
    cancel = threading.Event()

    seen: list[float] = []

    def cancel_once_running(p: Progress) -> None:
        seen.append(p.done)
        if len(seen) >= 2 and p.done < 100:  # the first report comes before the statement; later ones from its watch
            cancel.set()  # the statement is interrupted from the watcher thread (or stopped as it ends)

    with pytest.raises(Cancelled):
        import_file(ws, big, progress=cancel_once_running, cancel=cancel)
    assert ws.scalar("SELECT count(*) FROM records") == 0
    reports: list[Progress] = []
    r = import_file(ws, big, progress=reports.append)
    assert (r.n_imported, r.n_quarantined) == (n, 0)
    # The watch polled DuckDB's progress while the statement ran (one report comes before it). What DuckDB estimates
    # is its own: a short JSON scan can read 0.0 at every poll on a loaded machine (CI saw [0, 0.0, 0.0, ...]).
    running = [p.done for p in reports if p.done < 100]
    assert len(running) >= 2 and all(0 <= d < 100 for d in running), [p.done for p in reports]
    bad = write_jsonl(tmp_path / "bad.jsonl", [log_record("fine"), b"{not json", log_record("also fine")])
    r = import_file(ws, bad)  # the careful path: lines staged as Arrow in the service
    assert (r.n_imported, r.n_quarantined) == (2, 1)
    assert ws.query("SELECT line_no FROM quarantine") == [(2,)]
