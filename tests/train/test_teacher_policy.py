"""Teacher policies for a dataset version (issue 20) on a small workspace with known answers: one named teacher,
specialist per slice (scored against references on the bar's metric), vote (agreement stored, disagreements queued
for review); the recipe and `versions show` name each slice's teacher; the export carries the chosen answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.datasets import member_rows
from curation.errors import UserError
from curation.export import export_version
from curation.importing import import_file
from curation.rebalance import snapshot_version
from curation.workspace import Workspace
from distill.cli import main
from train.bars import QualityBar, set_bar
from train.teacher_policy import apply_policy, plan_policy

# slice a: gpt4 right on both, llama wrong on one; slice b: llama right on both, gpt4 wrong on both.
ROWS = [("qa1", "a", "x"), ("qa2", "a", "y"), ("qb1", "b", "z"), ("qb2", "b", "w")]
ANSWERS = {"gpt4": ["x", "y", "no", "no"], "llama": ["x", "bad", "z", "w"], "claude": ["x", "y", "z", "nah"]}


@pytest.fixture
def wsv(tmp_path: Path) -> Workspace:
    w = Workspace.open(tmp_path / "ws.duckdb")
    for t, answers in ANSWERS.items():
        f = tmp_path / f"{t}.json"
        f.write_text(json.dumps([{"prompt": p, "output": a, "area": s, "ref": r}
                                 for (p, s, r), a in zip(ROWS, answers, strict=True)]))  # fmt: skip
        import_file(w, f, teacher=t, slice_field="area", reference_field="ref")
    snapshot_version(w, "all")
    set_bar(w, QualityBar(task="t", metrics=[{"kind": "exact"}], threshold=0.5))
    yield w
    w.close()


def _chosen(ws: Workspace, version: str) -> list[tuple]:
    return ws.query(
        "SELECT r.prompt, m.teacher, m.response, m.agreement FROM dataset_members m JOIN records r USING (record_id) "
        "WHERE m.version = ? ORDER BY r.prompt",
        [version],
    )


def test_specialist_takes_each_slices_best_teacher(wsv: Workspace) -> None:
    from train.bars import require_bar

    plan = plan_policy(wsv, "all", "specialist", bar=require_bar(wsv))
    table = {s.slice: (s.chosen, s.scores) for s in plan.slices}
    assert table["a"][0] == "claude"  # claude and gpt4 both 1.0 on a: the tie goes by name
    assert table["a"][1]["llama"] == (0.5, 2)
    assert table["b"] == ("llama", {"claude": (0.5, 2), "gpt4": (0.0, 2), "llama": (1.0, 2)})
    apply_policy(wsv, plan, "spec")
    assert _chosen(wsv, "spec") == [("qa1", "claude", "x", None), ("qa2", "claude", "y", None),
                                    ("qb1", "llama", "z", None), ("qb2", "llama", "w", None)]  # fmt: skip
    step = json.loads(wsv.scalar("SELECT CAST(recipe AS VARCHAR) FROM dataset_versions WHERE name = 'spec'"))[-1]
    assert step == {
        "op": "teacher_policy",
        "policy": "specialist",
        "from": "all",
        "slices": {"a": "claude", "b": "llama"},
    }
    # the training file takes the chosen answers
    assert sorted(member_rows(wsv, "spec").column("response").to_pylist()) == ["w", "x", "y", "z"]


def test_vote_stores_agreement_and_queues_disagreements(wsv: Workspace) -> None:
    plan = plan_policy(wsv, "all", "vote")
    apply_policy(wsv, plan, "vote")
    assert _chosen(wsv, "vote") == [("qa1", "gpt4", "x", 1.0), ("qa2", "gpt4", "y", pytest.approx(2 / 3)),
                                    ("qb1", "claude", "z", pytest.approx(2 / 3)), ("qb2", None, "no", None)]  # fmt: skip
    assert plan.ties == 1  # qb2: no, w, nah
    out = export_version(wsv, "vote", wsv.path.parent / "out", fmt="jsonl")
    docs = [json.loads(x) for x in (wsv.path.parent / "out" / "vote.train.jsonl").read_text().splitlines()]
    assert [(d.get("teacher"), d.get("agreement")) for d in docs][:2] == [("gpt4", 1.0), ("gpt4", pytest.approx(2 / 3))]
    assert out.version == "vote"
    queued = wsv.query(
        "SELECT r.prompt FROM reviews v JOIN records r USING (record_id) WHERE v.status = 'needs_review' ORDER BY 1"
    )
    assert queued == [("qa2",), ("qb1",), ("qb2",)]


def test_one_named_teacher_and_the_cli(wsv: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    apply_policy(wsv, plan_policy(wsv, "all", "teacher", teacher="llama"), "llama-v")
    assert [r[2] for r in _chosen(wsv, "llama-v")] == ["x", "bad", "z", "w"]
    with pytest.raises(UserError, match=r"teacher .nope.*claude, gpt4, llama"):
        plan_policy(wsv, "all", "teacher", teacher="nope")
    path = str(wsv.path)
    wsv.close()
    assert main(["versions", "teachers", "all", "--policy", "specialist", "--as", "spec", "-w", path]) == 0
    out = capsys.readouterr().out
    assert "1.000 (2) *" in out and "wrote spec" in out
    assert main(["versions", "show", "spec", "-w", path]) == 0
    out = capsys.readouterr().out
    assert "llama" in out.split("recipe:")[0]
