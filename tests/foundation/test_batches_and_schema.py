"""Re-import is idempotent, imports can be undone, the schema migrates forward, and crashes lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from curation.errors import UserError, WorkspaceLockedError
from curation.importing import import_file, list_batches, undo_import
from curation.migrations import migrate
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def test_reimport_adds_nothing(ws: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "l.jsonl", [log_record(f"t{i}") for i in range(10)] + [log_record("t0")])
    first = import_file(ws, path)
    assert first.n_imported == 11  # an identical line twice in one file is real traffic: both kept
    again = import_file(ws, path)
    assert (again.n_imported, again.n_duplicates) == (0, 11)
    assert ws.scalar("SELECT count(*) FROM records") == 11
    superset = write_jsonl(tmp_path / "m.jsonl", [log_record(f"t{i}") for i in range(12)])
    assert import_file(ws, superset).n_imported == 2


def test_undo_import(ws: Workspace, tmp_path: Path) -> None:
    a = import_file(ws, write_jsonl(tmp_path / "a.jsonl", [log_record("a1"), log_record("a2"), b"bad"]))
    b = import_file(ws, write_jsonl(tmp_path / "b.jsonl", [log_record("b1")]))
    assert undo_import(ws, a.batch_id) == 2
    assert ws.query("SELECT prompt FROM records") == [("b1",)]
    assert ws.scalar("SELECT count(*) FROM quarantine") == 0
    statuses = {x["batch_id"]: x["status"] for x in list_batches(ws)}
    assert statuses == {a.batch_id: "undone", b.batch_id: "done"}
    with pytest.raises(UserError, match="already undone"):
        undo_import(ws, a.batch_id)
    with pytest.raises(UserError, match="no import batch 99"):
        undo_import(ws, 99)
    # the undone file can be imported again
    assert import_file(ws, tmp_path / "a.jsonl").n_imported == 2


def test_undo_refuses_to_drop_reviews_unless_forced(ws: Workspace, tmp_path: Path) -> None:
    r = import_file(ws, write_jsonl(tmp_path / "a.jsonl", [log_record("a1")]))
    rid = ws.scalar("SELECT record_id FROM records")
    with ws.transaction() as cur:
        cur.execute(
            "INSERT INTO reviews (record_id, status, reviewer, updated_at) VALUES (?, 'accepted', 'ann', now())", [rid]
        )
    with pytest.raises(UserError, match="1 in reviews"):
        undo_import(ws, r.batch_id)
    assert undo_import(ws, r.batch_id, force=True) == 1
    assert ws.scalar("SELECT count(*) FROM reviews") == 0


def test_migration_from_v1_workspace(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, target=1)
    lp = json.dumps([{"token": "a", "logprob": -0.5}, {"token": "b", "logprob": -1.5}])
    con.execute(
        "INSERT INTO import_batches (batch_id, source_file, format, started_at) VALUES (1, 'f', 'log', now());"
        "INSERT INTO records (batch_id, messages, response, response_logprobs, content_hash) "
        f"VALUES (1, '[]', 'ab', '{lp}', 'h1')"
    )
    con.close()
    with Workspace.open(path) as ws:
        assert ws.schema_version() == Workspace.code_schema_version()
        assert ws.query("SELECT mean_logprob, min_logprob FROM records") == [(-1.0, -1.5)]
        ws.set_setting("k", [1])
    with Workspace.open(path) as ws:
        assert ws.get_setting("k") == [1]


def test_missing_middle_versions_are_filled_in(tmp_path: Path) -> None:
    """A workspace made while v6 existed but v4/v5 did not (features merge in any order) gets v4 and v5."""
    from curation.migrations import all_migrations

    path = tmp_path / "gap.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, target=3)
    v6 = next(m for m in all_migrations() if m.version == 6)
    v6.apply(con)
    con.execute("INSERT INTO schema_migrations VALUES (6, 'training', now())")
    con.close()
    with Workspace.open(path) as ws:
        versions = [r[0] for r in ws.query("SELECT version FROM schema_migrations ORDER BY 1")]
        # Every known migration (numbers are assigned per feature, so the known ones may skip one not merged yet).
        assert versions == [m.version for m in all_migrations()]
        assert {4, 5, 6} <= set(versions) and versions[-1] == Workspace.code_schema_version()
        assert ws.table_exists("dataset_versions") and ws.table_exists("teacher_outputs")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    with Workspace.open(path) as ws, ws.transaction() as cur:
        cur.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', now())")
    with pytest.raises(UserError, match="v999"):
        Workspace.open(path)


def test_transaction_rolls_back(ws: Workspace) -> None:
    with pytest.raises(RuntimeError), ws.transaction() as cur:
        cur.execute("INSERT INTO settings VALUES ('x', '1', now())")
        raise RuntimeError("boom")
    assert ws.get_setting("x") is None


def _child(code: str, ws_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, str(ws_path)], env=env, stdout=subprocess.PIPE)


def test_locked_workspace_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Workspace.open(path).close()
    child = _child("import sys,time; from curation import Workspace; w=Workspace.open(sys.argv[1]); "
                   "print('open', flush=True); time.sleep(30)", path)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"open"
        with pytest.raises(WorkspaceLockedError, match="open in another process"):
            Workspace.open(path)
    finally:
        child.kill()
        child.wait()


def test_killed_import_leaves_a_workspace_that_opens(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Workspace.open(path) as ws:
        import_file(ws, write_jsonl(tmp_path / "first.jsonl", [log_record("kept")]))
    big = write_jsonl(
        tmp_path / "big.jsonl", [log_record(f"p{i}", logprobs=[-0.1] * 20) for i in range(60_000)] + [b"x"]
    )
    code = ("import sys; from curation import Workspace; from curation.importing import import_file; "
            f"w=Workspace.open(sys.argv[1]); print('go', flush=True); import_file(w, {str(big)!r})")  # fmt: skip
    child = _child(code, path)
    assert child.stdout is not None and child.stdout.readline().strip() == b"go"
    time.sleep(1.0)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Workspace.open(path) as ws:
        assert ws.query("SELECT prompt FROM records") == [("kept",)]
        assert ws.scalar("SELECT count(*) FROM import_batches") == 1


def test_stats_shows_the_synthetic_share_per_slice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from curation.records import finish_batch, insert_records, new_batch
    from distill.cli import main

    path = tmp_path / "s.duckdb"
    with Workspace.open(path) as ws, ws.transaction() as cur:
        b = new_batch(cur, "made", "synthetic", {})
        rows = [{"messages": [{"role": "user", "content": f"q{i}"}], "slice": "security"} for i in range(4)]
        rows[0]["origin"] = rows[1]["origin"] = "synthetic"
        rows[2]["slice"] = "billing"
        insert_records(cur, b, rows)
        finish_batch(cur, b, n_lines=4, n_imported=4, n_duplicates=0, n_quarantined=0)
    assert main(["stats", "-w", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 synthetic" in out and "synthetic" in out.splitlines()[4]
    line = next(x for x in out.splitlines() if x.startswith("security"))
    assert line.rstrip().endswith("2 (67%)")
