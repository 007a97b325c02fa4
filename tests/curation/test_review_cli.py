"""`distill review` (status, assign, export) and the review counts per reviewer in `distill stats`."""

from __future__ import annotations

import json

from curation import review
from curation.workspace import Workspace
from distill.cli import main
from tests.studio.conftest import build_workspace


def test_assign_status_export_and_stats(tmp_path, capsys) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=30)
    w = ["-w", str(path)]
    assert main(["review", *w]) == 0
    assert "no reviewer has decided" in capsys.readouterr().out
    assert main(["review", "assign", "--reviewers", "alice,bob", "--overlap", "1", "--slice", "billing", *w]) == 0
    assert "10 records (10 reviewed twice): alice 10, bob 10" in capsys.readouterr().out
    with Workspace.open(path) as ws:
        billing = [r[0] for r in ws.query("SELECT record_id FROM records WHERE slice = 'billing' ORDER BY 1")]
        for rid in billing[:4]:
            review.accept(ws, rid, reviewer="alice")
            review.accept(ws, rid, reviewer="bob") if rid != billing[0] else review.reject(ws, rid, "x", reviewer="bob")
    assert main(["review", "status", "--json", *w]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["conflicts"] == 1
    (ag,) = doc["agreement"]
    assert ag["slice"] == "billing" and ag["items"] == 4 and ag["method"] == "cohen"
    alice = next(p for p in doc["progress"] if p["reviewer"] == "alice")
    assert (alice["assigned"], alice["done"], alice["accepted"]) == (10, 4, 4)
    assert main(["review", *w]) == 0
    assert "Agreement" in capsys.readouterr().out
    out = tmp_path / "decisions.jsonl"
    assert main(["review", "export", "-o", str(out), *w]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 8 and {x["reviewer"] for x in lines} == {"alice", "bob"}
    assert sum(x["conflict"] for x in lines) == 2
    assert main(["stats", "--json", *w]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert {(r["reviewer"], r["done"]) for r in stats["reviewers"]} == {("alice", 4), ("bob", 4)}


def test_assign_refusals_are_one_line(tmp_path, capsys) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=6)
    assert main(["review", "assign", "--reviewers", "alice", "--overlap", "0.5", "-w", str(path)]) == 1
    assert "an overlap needs at least two reviewers" in capsys.readouterr().err
    assert main(["review", "assign", "--reviewers", "a,b", "--overlap", "2", "-w", str(path)]) == 1
    assert "Overlap (--overlap): must be <= 1" in capsys.readouterr().err
    assert main(["review", "assign", "--reviewers", "a,b", "--where", "nope = 1", "-w", str(path)]) == 1
    assert capsys.readouterr().err.startswith("error:")
