"""The fast import path: one ordered INSERT, then ids and line numbers from row ids in a second transaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

import curation.importing.careful as careful
import curation.importing.fast as fast
from curation.importing import import_file, undo_import
from curation.migrations import migrate
from curation.progress import Progress
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def test_line_numbers_and_ids_follow_the_file_across_parallel_chunks(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Earlier batches, one of them undone, so the new rows do not start at row id 0 and the table has gaps.
    import_file(ws, write_jsonl(tmp_path / "a.jsonl", [log_record(f"a{i}") for i in range(3)]))
    undone = import_file(ws, write_jsonl(tmp_path / "b.jsonl", [log_record(f"b{i}") for i in range(4)]))
    undo_import(ws, undone.batch_id)
    # Over 64 MB: DuckDB reads it in 32 MB buffers on both threads, which an unordered insert would interleave.
    n = 120_000
    big = write_jsonl(tmp_path / "big.jsonl", [log_record(f"ticket {i}", logprobs=[-0.01 * (i % 7)]) for i in range(n)])
    assert big.stat().st_size > 64 * 2**20
    monkeypatch.setattr(careful, "import_careful", None)  # the fast path must take it
    cur = ws.cursor()
    cur.execute("SET threads = 4")  # several threads whatever the machine (DuckDB defaults to one per core)
    cur.close()
    reports: list[Progress] = []
    r = import_file(ws, big, progress=reports.append)
    assert (r.n_lines, r.n_imported, r.n_quarantined) == (n, n, 0)
    # DuckDB's own progress is reported during the one big INSERT, not only its start and end.
    assert len(reports) > 2, [p.done for p in reports]
    rows = ws.query(
        "SELECT record_id, source_line, prompt FROM records WHERE batch_id = ? ORDER BY record_id", [r.batch_id]
    )
    first_id = rows[0][0]
    assert first_id == 8  # 3 + 4 ids were taken before, undone or not
    assert [(rid - first_id + 1, line) for rid, line, _ in rows] == [(i + 1, i + 1) for i in range(n)]
    assert all(prompt == f"ticket {line - 1}" for _, line, prompt in rows)
    assert ws.query("SELECT status, n_imported FROM import_batches WHERE batch_id = ?", [r.batch_id]) == [("done", n)]
    # The sequence moved past the block: the next writer gets a fresh id.
    assert ws.scalar("SELECT nextval('record_seq')") == first_id + n


def test_a_failure_while_numbering_removes_the_batch(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_file(ws, write_jsonl(tmp_path / "kept.jsonl", [log_record("kept")]))

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(fast, "_number_rows", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(ws, write_jsonl(tmp_path / "new.jsonl", [log_record(f"n{i}") for i in range(5)]))
    assert ws.query("SELECT prompt FROM records") == [("kept",)]
    assert ws.scalar("SELECT count(*) FROM import_batches") == 1


def test_a_process_killed_between_the_two_transactions_leaves_no_half_batch(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Workspace.open(path) as ws:
        import_file(ws, write_jsonl(tmp_path / "first.jsonl", [log_record("kept")]))
    second = write_jsonl(tmp_path / "second.jsonl", [log_record(f"s{i}") for i in range(50)])
    # The child dies right after the rows are committed and before they are numbered.
    code = (
        "import os, sys; import curation.importing.fast as L; from curation import Workspace; "
        "from curation.importing import import_file; L._number_rows = lambda *a: os._exit(9); "
        f"w = Workspace.open(sys.argv[1]); import_file(w, {str(second)!r})"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run([sys.executable, "-c", code, str(path)], env=env).returncode == 9
    con = duckdb.connect(str(path))  # what the killed process left: the committed, unnumbered batch
    assert con.execute("SELECT count(*) FROM import_batches WHERE status = 'importing'").fetchall() == [(1,)]
    con.close()
    with Workspace.open(path) as ws:
        assert ws.query("SELECT prompt FROM records") == [("kept",)]
        assert ws.query("SELECT status FROM import_batches") == [("done",)]
        r = import_file(ws, second)  # and the file imports cleanly afterwards
        assert r.n_imported == 50
        assert ws.scalar("SELECT max(source_line) FROM records WHERE batch_id = ?", [r.batch_id]) == 50


def test_numbering_rows_that_are_not_contiguous(ws: Workspace) -> None:
    """Rows of one batch split by another batch's rows still get ids and lines in row order."""
    with ws.transaction() as cur:
        for batch, prompt in ((7, "first"), (7, "second"), (8, "other"), (7, "third")):
            cur.execute(
                "INSERT INTO records (record_id, batch_id, messages, prompt, content_hash) VALUES (-1, ?, '[]', ?, ?)",
                [batch, prompt, prompt],
            )
    with ws.transaction() as cur:
        fast._number_rows(cur, 7, 3)
    rows = ws.query("SELECT record_id, source_line, prompt FROM records WHERE batch_id = 7 ORDER BY record_id")
    assert [(line, prompt) for _, line, prompt in rows] == [(1, "first"), (2, "second"), (3, "third")]
    assert [rid for rid, _, _ in rows] == [1, 2, 3]
    assert ws.query("SELECT record_id, source_line FROM records WHERE batch_id = 8") == [(-1, None)]
    with pytest.raises(RuntimeError, match="expected 5"), ws.transaction() as cur:
        fast._number_rows(cur, 7, 5)


def test_migration_to_v7_keeps_records_and_drops_the_key_index(tmp_path: Path) -> None:
    path = tmp_path / "v6.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, target=6)
    con.execute("INSERT INTO import_batches (batch_id, source_file, format, started_at) VALUES (1, 'f', 'log', now())")
    for prompt in ("one", "two"):
        con.execute(
            "INSERT INTO records (batch_id, messages, prompt, content_hash, metadata) VALUES (1, '[]', ?, ?, ?)",
            [prompt, prompt, json.dumps({"tier": "pro"})],
        )
    con.close()
    con = duckdb.connect(str(path))
    before = con.execute("SELECT * FROM records ORDER BY record_id").fetchall()
    columns = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'records'").fetchall()
    con.close()
    with Workspace.open(path) as ws:
        assert ws.schema_version() >= 7
        # every value, in the same columns (v11 then adds active_slice, a copy of slicing assignments)
        assert ws.query("SELECT * EXCLUDE (active_slice) FROM records ORDER BY record_id") == before
        assert (
            ws.query(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'records' "
                "AND column_name <> 'active_slice'"
            )
            == columns
        )
        assert ws.query("SELECT record_id, prompt, metadata->>'tier' FROM records ORDER BY 1") == [
            (1, "one", "pro"),
            (2, "two", "pro"),
        ]
        kinds = [
            r[0] for r in ws.query("SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'records'")
        ]
        assert "PRIMARY KEY" not in kinds and "NOT NULL" in kinds
        with ws.transaction() as cur:  # defaults still apply: the next id comes from the sequence
            cur.execute("INSERT INTO records (batch_id, messages, content_hash) VALUES (1, '[]', 'h3')")
        assert ws.scalar("SELECT max(record_id) FROM records") == 3


def test_migration_to_v8_stores_per_record_text_with_zstd(tmp_path: Path) -> None:
    path = tmp_path / "v7.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, target=7)
    con.execute(  # from the sequence, as a real import would, so the next import's batch id does not clash
        "INSERT INTO import_batches (batch_id, source_file, format, started_at) "
        "VALUES (nextval('import_batch_seq'), 'f', 'log', now())"
    )
    con.execute(
        "INSERT INTO records (batch_id, messages, prompt, response_logprobs, content_hash, mean_logprob) "
        'VALUES (1, \'[{"role":"user","content":"hi"}]\', \'hi\', \'[{"token":"a","logprob":-0.5}]\', \'h1\', -0.5)'
    )
    before = con.execute("SELECT * FROM records").fetchall()
    columns = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'records'").fetchall()
    con.close()
    with Workspace.open(path) as ws:
        assert ws.schema_version() >= 8
        assert ws.query("SELECT * EXCLUDE (active_slice) FROM records") == before  # v11 adds active_slice
        assert (
            ws.query(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'records' "
                "AND column_name <> 'active_slice'"
            )
            == columns
        )
        # New imports write those columns as ZSTD segments (DuckDB would pick dictionary+FSST on its own).
        rows = [log_record(f"ticket {i}: {'x' * (i % 50)}", logprobs=[-0.1 * (i % 7), -0.2]) for i in range(3000)]
        import_file(ws, write_jsonl(tmp_path / "more.jsonl", rows))
        with ws.cursor() as cur:
            cur.execute("CHECKPOINT")
        found = ws.query(
            "SELECT column_name, list(DISTINCT compression ORDER BY compression) FROM pragma_storage_info('records') "
            "WHERE segment_type <> 'VALIDITY' AND column_name IN ('messages', 'prompt', 'response_logprobs', "
            "'content_hash') GROUP BY ALL ORDER BY 1"
        )
    assert found == [(c, ["ZSTD"]) for c in ("content_hash", "messages", "prompt", "response_logprobs")]


def test_reimports_and_overlaps_stay_on_the_fast_path(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_jsonl(tmp_path / "first.jsonl", [log_record(f"p{i}") for i in range(6)])
    import_file(ws, first)
    monkeypatch.setattr(careful, "import_careful", None)  # neither import below may need the careful path
    again = import_file(ws, first)
    assert (again.n_lines, again.n_imported, again.n_duplicates) == (6, 0, 6)
    # New lines among old ones (and one repeated inside the file, which is kept twice) keep their own line numbers.
    mixed = [log_record("p0"), log_record("new a"), log_record("p3"), log_record("new b"), log_record("new b")]
    r = import_file(ws, write_jsonl(tmp_path / "mixed.jsonl", mixed))
    assert (r.n_lines, r.n_imported, r.n_duplicates) == (5, 3, 2)
    rows = ws.query("SELECT source_line, prompt FROM records WHERE batch_id = ? ORDER BY record_id", [r.batch_id])
    assert rows == [(2, "new a"), (4, "new b"), (5, "new b")]
    assert ws.query("SELECT n_imported, n_duplicates, status FROM import_batches WHERE batch_id = ?", [r.batch_id]) == [
        (3, 2, "done")
    ]
    assert ws.scalar("SELECT count(*) FROM records") == 9


def test_other_writers_wait_until_the_rows_are_numbered(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write from another thread (a reviewer's bulk accept, say) never runs between the two transactions."""
    seen: list[int] = []

    def other_writer() -> None:
        with ws.transaction() as cur:
            seen.append(cur.execute("SELECT count(*) FROM records WHERE record_id < 0").fetchall()[0][0])

    other = threading.Thread(target=other_writer)
    real_insert, real_finish = fast._insert_checked, fast._finish_fast

    def insert_then_start_the_other_writer(*args: object) -> int:
        n = real_insert(*args)
        other.start()  # it queues for the workspace while the first transaction is still open
        return n

    def finish_late(*args: object) -> tuple[int, int]:
        time.sleep(0.5)  # between the two transactions: the other writer's chance, were the workspace free
        return real_finish(*args)

    monkeypatch.setattr(fast, "_insert_checked", insert_then_start_the_other_writer)
    monkeypatch.setattr(fast, "_finish_fast", finish_late)
    r = import_file(ws, write_jsonl(tmp_path / "f.jsonl", [log_record(f"p{i}") for i in range(10)]))
    other.join()
    assert r.n_imported == 10 and seen == [0]


def test_a_fall_back_to_the_careful_path_keeps_the_batch_number(ws: Workspace, tmp_path: Path) -> None:
    """The fast path's rolled-back attempt took a number from the sequence; the careful path reuses it."""
    bad = write_jsonl(tmp_path / "bad.jsonl", [log_record("a"), log_record("b")])
    with bad.open("a") as f:
        f.write("not json\n")
    clean = write_jsonl(tmp_path / "clean.jsonl", [log_record("c")])
    results = [import_file(ws, bad), import_file(ws, clean), import_file(ws, bad)]
    assert [(r.batch_id, r.n_imported, r.n_quarantined) for r in results] == [(1, 2, 1), (2, 1, 0), (3, 0, 1)]
    assert ws.query("SELECT batch_id FROM import_batches ORDER BY 1") == [(1,), (2,), (3,)]


def test_a_reused_batch_number_survives_a_crash_before_the_checkpoint(tmp_path: Path) -> None:
    """The fast attempt's nextval rolled back, so it was never logged; the reused number must be, with its batch."""
    path = tmp_path / "w.duckdb"
    bad = write_jsonl(tmp_path / "bad.jsonl", [log_record("a"), b"{not json"])
    code = (
        "import os, sys; from curation import Workspace; from curation.importing import import_file; "
        f"w = Workspace.open(sys.argv[1]); r = import_file(w, {str(bad)!r}); os._exit(7 if r.batch_id == 1 else 1)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run([sys.executable, "-c", code, str(path)], env=env).returncode == 7  # no close, no checkpoint
    with Workspace.open(path) as ws:
        r = import_file(ws, write_jsonl(tmp_path / "clean.jsonl", [log_record("b")]))
        assert r.batch_id == 2
        assert ws.query("SELECT batch_id, n_imported FROM import_batches ORDER BY 1") == [(1, 1), (2, 1)]


def test_role_null_is_quarantined_on_both_paths(ws: Workspace, tmp_path: Path) -> None:
    """json null is no role: both paths quarantine the line (both read roles with the same json_transform)."""
    rec = log_record("who")
    rec["request"]["messages"][-1]["role"] = None
    fast_ = import_file(ws, write_jsonl(tmp_path / "a.jsonl", [rec]))
    careful_ = import_file(ws, write_jsonl(tmp_path / "b.jsonl", [rec, b"{not json"]))
    assert (fast_.n_imported, careful_.n_imported) == (0, 0)
    reasons = ws.query("SELECT DISTINCT field, reason FROM quarantine WHERE reason LIKE '%role%'")
    assert reasons == [("request.messages", 'a message has no "role"')]


@pytest.mark.parametrize(
    ("content", "lines"),
    [(b"", 0), (b"\n", 1), (b"a", 1), (b"a\nb", 2), (b"a\nb\n", 2), (b"a\n\nb\n", 3), (b"a\r\nb\r\n", 2)],
)
def test_count_lines(tmp_path: Path, content: bytes, lines: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    from curation.importing import lines as lines_mod

    monkeypatch.setattr(lines_mod, "CHUNK_BYTES", 2)  # lines that straddle reads
    plain = tmp_path / "f.jsonl"
    plain.write_bytes(content)
    zipped = tmp_path / "f.jsonl.gz"
    zipped.write_bytes(gzip.compress(content))
    assert lines_mod.count_lines(plain) == lines_mod.count_lines(zipped) == lines
