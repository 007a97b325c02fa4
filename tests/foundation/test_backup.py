"""`distill backup` / `distill restore`: a workspace to a folder and back, every row, never overwriting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation import review
from curation.errors import UserError
from curation.importing import import_file
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def distill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISTILL_WORKSPACE", "DISTILL_DEBUG")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "distill", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def tickets(path: Path, start: int, n: int) -> Path:
    return write_jsonl(
        path, [log_record(f"ticket {i}", slice_=("billing", "login")[i % 2]) for i in range(start, start + n)]
    )


def every_table(ws: Workspace) -> dict[str, list[tuple]]:
    names = [r[0] for r in ws.query("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1")]
    return {n: ws.query(f'SELECT * FROM "{n}" ORDER BY ALL') for n in names}


def test_round_trip_keeps_every_row_and_the_sequences(tmp_path: Path) -> None:
    src = tmp_path / "shop.duckdb"
    with Workspace.open(src) as ws:
        import_file(ws, tickets(tmp_path / "a.jsonl", 0, 30))
        review.accept(ws, 3, reviewer="ann")
        review.edit(ws, 4, '{"intent": "cancel"}', reviewer="ann")
        ws.set_setting("curation.slicing", "-")
        before = every_table(ws)
    out = distill("backup", str(tmp_path / "bk"), "-w", str(src), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["records"] == 30
    manifest = json.loads((tmp_path / "bk" / "distill-backup.json").read_text())
    assert manifest["tables"]["records"] == 30 and manifest["schema_version"] == Workspace.code_schema_version()

    back = distill("restore", str(tmp_path / "bk"), "-w", str(tmp_path / "restored.duckdb"), cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert "restored 30 records into" in back.stdout
    with Workspace.open(tmp_path / "restored.duckdb", create=False) as ws:
        after = every_table(ws)
        assert after.keys() == before.keys()
        for name in before:
            assert after[name] == before[name], name
        r = import_file(ws, tickets(tmp_path / "b.jsonl", 30, 5))  # ids go on from where the original was
        assert r.n_imported == 5
        assert ws.query("SELECT min(record_id), max(record_id) FROM records WHERE batch_id = 2") == [(31, 35)]
    stats = distill("stats", "-w", "restored.duckdb", cwd=tmp_path)
    assert "35 records" in stats.stdout


def test_default_folder_and_refusals(tmp_path: Path) -> None:
    src = tmp_path / "shop.duckdb"
    with Workspace.open(src) as ws:
        import_file(ws, tickets(tmp_path / "a.jsonl", 0, 3))
    out = distill("backup", "-w", "shop.duckdb", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (made,) = (tmp_path / "shop.backups").iterdir()
    assert f"to {Path('shop.backups') / made.name}" in out.stdout and not list(tmp_path.glob("**/*.partial"))

    again = distill("backup", str(made), "-w", "shop.duckdb", cwd=tmp_path)
    assert again.returncode == 1 and "already exists and is not an empty folder" in again.stderr
    onto = distill("restore", str(made), "-w", "shop.duckdb", cwd=tmp_path)
    assert onto.returncode == 1 and "shop.duckdb already exists; restore into a new file name" in onto.stderr
    nothing = distill("restore", str(tmp_path), "-w", "new.duckdb", cwd=tmp_path)
    assert nothing.returncode == 1 and "is not a Distill backup" in nothing.stderr
    assert not (tmp_path / "new.duckdb").exists()


def test_a_damaged_backup_restores_nothing(tmp_path: Path) -> None:
    from curation.backup import backup_workspace, restore_workspace

    with Workspace.open(tmp_path / "shop.duckdb") as ws:
        import_file(ws, tickets(tmp_path / "a.jsonl", 0, 10))
        backup_workspace(ws, tmp_path / "bk")
    manifest = tmp_path / "bk" / "distill-backup.json"
    doc = json.loads(manifest.read_text())
    doc["tables"]["records"] = 11  # a backup that lost a row on the way
    manifest.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"does not restore every row \(records: 10 of 11\)"):
        restore_workspace(tmp_path / "bk", tmp_path / "new.duckdb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "bk", "shop.artifacts", "shop.duckdb"]


def test_the_damaged_workspace_message_leads_to_a_restore(tmp_path: Path) -> None:
    """The whole way back: a backup, the workspace truncated, the message, the restore it names."""
    with Workspace.open(tmp_path / "shop.duckdb") as ws:
        import_file(ws, tickets(tmp_path / "a.jsonl", 0, 10))
    assert distill("backup", "bk", "-w", "shop.duckdb", cwd=tmp_path).returncode == 0
    os.truncate(tmp_path / "shop.duckdb", 20_000)
    broken = distill("stats", "-w", "shop.duckdb", cwd=tmp_path)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "shop.duckdb is damaged" in broken.stderr and "distill restore BACKUP -w NEW.duckdb" in broken.stderr
    assert distill("restore", "bk", "-w", "NEW.duckdb", cwd=tmp_path).returncode == 0
    assert "10 records" in distill("stats", "-w", "NEW.duckdb", cwd=tmp_path).stdout
