"""Rounds on a tiny student with the fake teacher over real HTTP: the plan of a dry run, a whole round with every
step recorded and the held-out guard (planted near-duplicates of held-out prompts never enter the new version), a
budget stop and cancels continued without asking the teacher twice, and a round killed mid-training that
`distill round next` continues from its first unfinished step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from roundfix import copy_workspace, heldout_prompts

from curation.splits import check_leakage
from curation.teacher.config import get_teacher
from curation.teacher.store import ledger_summary
from curation.workspace import Workspace
from distill.cli import main
from tests.teacher.conftest import KEY, KEY_ENV
from tests.teacher.fake_openai import FakeOpenAI
from train import store
from train.checklist import run as checklist
from train.rounds.history import round_cost, round_history
from train.rounds.options import ROUND
from train.rounds.plan import STEPS, RoundPlan, estimate, weights_from_gap, wrong_sql
from train.rounds.run import StepEvent, abandon_round, next_round, pending
from train.rounds.store import get_steps, round_records

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(round_fake: FakeOpenAI) -> FakeOpenAI:
    return round_fake


@pytest.fixture
def base(round_base: dict[str, Any]) -> dict[str, Any]:
    return round_base


@pytest.fixture
def wpath(base: dict[str, Any], tmp_path: Path, fake: FakeOpenAI) -> Path:
    fake.planted = ()
    return copy_workspace(base["path"], tmp_path)


def _values(ws: Workspace, **raw: Any) -> dict[str, Any]:
    return ROUND.resolve(ws, ROUND.parse(raw))


def _wrong(ws: Workspace, eval_id: int) -> dict[str, list[int]]:
    rows = ws.query(f"SELECT slice, list(record_id ORDER BY record_id) FROM eval_items WHERE eval_id = ? AND "
                    f"{wrong_sql()} GROUP BY 1", [eval_id])  # fmt: skip
    return {s: list(ids) for s, ids in rows}


def test_a_dry_run_shows_the_plan_and_its_cost_and_changes_nothing(
    wpath: Path, base: dict[str, Any], fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = sum(fake.attempts.values())
    assert main(["round", "next", "-w", str(wpath), "-n", "6", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"round 1 (new) from evaluation {base['eval_id']} (run {base['run_id']}, version v1)" in out
    assert "next version v1-r1" in out and "estimated teacher cost: at most $" in out
    assert all(f"{i}. {s}:" in out for i, s in enumerate(STEPS, 1))
    assert all(s in out for s in base["failing"])
    assert main(["round", "next", "-w", str(wpath), "-n", "6", "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    plan = RoundPlan.from_dict(doc["plan"])
    with Workspace.open(wpath) as ws:
        wrong = _wrong(ws, base["eval_id"])
        assert [s.slice for s in plan.slices] == base["failing"] == sorted(wrong)
        assert {s.slice: s.seeds for s in plan.slices} == wrong  # the failing items seed the new inputs
        assert {s.slice: s.n_wrong for s in plan.slices} == {k: len(v) for k, v in wrong.items()}
        assert all(s.n_new == 6 for s in plan.slices)
        gaps = {r[0]: r[1] for r in ws.query("SELECT slice, gap FROM eval_slices WHERE eval_id = ?", [base["eval_id"]])}
        assert {s.slice: s.weight for s in plan.slices} == weights_from_gap(
            {k: gaps[k] for k in wrong}, "gap", ROUND.default("max_weight"))  # fmt: skip
        usd, requests = estimate(ws, get_teacher(ws, "big"), plan.slices, ROUND.default("examples"))
        assert plan.estimate_usd == pytest.approx(usd) and usd > 0 and plan.estimate_requests == requests == 3 * (3 + 6)
        assert ws.scalar("SELECT count(*) FROM rounds") == 0 and ws.scalar("SELECT count(*) FROM round_steps") == 0
        assert ws.scalar("SELECT count(*) FROM records WHERE origin = 'synthetic'") == 0
    assert sum(fake.attempts.values()) == sent  # nothing asked


def test_a_round_chains_the_operations_records_every_step_and_keeps_heldout_near_duplicates_out(
    wpath: Path, base: dict[str, Any], fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    with Workspace.open(wpath) as ws:
        held = heldout_prompts(ws)
        hid = base["heldout"][0]
        # A paraphrase (same numbers: a near-duplicate by dedupe's definition) and a copy that differs only in case
        # and punctuation (an exact duplicate once normalised); synth's own check (case and spaces) lets both in.
        near = held[hid].replace("ticket", "Ticket").replace(":", " - my") + ", thanks!"
        exact = held[hid].upper() + "."
        # And a copy of a train record's prompt: a duplicate of an older record, never a new input.
        tid = min(
            r for (r,) in ws.query("SELECT record_id FROM dataset_members WHERE version = 'v1' AND side = 'train'")
        )
        older = str(ws.scalar("SELECT prompt FROM records WHERE record_id = ?", [tid])).upper() + "!"
        fake.planted = (near, exact, older)
        events: list[StepEvent] = []
        res = next_round(ws, _values(ws, n=6, examples=3), on_step=events.append)
        assert res.status == "done", res.error
        assert [e.step for e in events if e.status == "done"] == list(STEPS)
        steps = get_steps(ws, res.round_id)
        assert [(k, v["status"]) for k, v in steps.items()] == [(s, "done") for s in STEPS]
        new = round_records(ws, res.round_id)
        ids = sorted(i for v in new.values() for i in v)
        assert steps["synth"]["outputs"]["records"] == {k: len(v) for k, v in new.items()}
        planted = dict(
            ws.query("SELECT prompt, record_id FROM records WHERE prompt IN (?, ?, ?)", [near, exact, older])
        )
        assert set(planted) == {near, exact, older} and set(planted.values()) <= set(ids)  # synth let them in
        dd = steps["dedupe"]["outputs"]
        assert {(h, t) for h, t, _, _ in dd["leaks"]} >= {(hid, planted[near]), (hid, planted[exact])}
        assert {k for h, t, s, k in dd["leaks"] if t == planted[exact]} == {"exact"}
        assert dd["dropped"].get("leak: near-duplicate of held-out", 0) >= 2
        assert planted[near] not in dd["added"] and planted[exact] not in dd["added"]
        assert planted[older] not in dd["added"]
        # Only the new inputs were checked: no workspace-wide dedupe run (its rare-slice guard stopped rounds).
        assert dd["dedupe_runs"] == [] and ws.scalar("SELECT count(*) FROM dedupe_runs") == 0

        # The version: v1 plus the records kept, weighted by their slice's gap; no held-out near-duplicate in it.
        members = {r: (side, w) for r, side, w in ws.query(
            "SELECT record_id, side, weight FROM dataset_members WHERE version = ?", [res.version])}  # fmt: skip
        v1 = {r: (side, w) for r, side, w in ws.query(
            "SELECT record_id, side, weight FROM dataset_members WHERE version = 'v1'")}  # fmt: skip
        assert res.version == "v1-r1" and set(members) == set(v1) | set(dd["added"]) and res.n_added == len(dd["added"])
        assert all(members[r] == v1[r] for r in v1)
        weight = {s.slice: s.weight for s in res.plan.slices}
        assert all(members[r] == ("train", weight[s]) for s, rs in new.items() for r in rs if r in members)
        assert planted[near] not in members and planted[exact] not in members
        train = [r for r, (side, _) in members.items() if side == "train"]
        assert check_leakage(ws, "heldout", record_ids=train) == []

        # Seeded with the failing prompts: every example shown in a synth request is a wrong held-out item's prompt.
        wrong_prompts = {held[r] for rs in _wrong(ws, base["eval_id"]).values() for r in rs}
        shown = [ln[2:] for c in fake.attempts if "answered wrongly" in c
                 for m in json.loads(c) if m["role"] == "user" for ln in m["content"].splitlines() if ln.startswith("- ")]  # fmt: skip
        assert shown and set(shown) <= wrong_prompts

        # Trained with the previous run's config, evaluated on the same sample; costed in the ledger.
        run, prev = store.get_run(ws, res.run_id), store.get_run(ws, base["run_id"])
        strip = ("out_dir", "data_path")
        assert {k: v for k, v in run["config"].items() if k not in strip} == {
            k: v for k, v in prev["config"].items() if k not in strip}  # fmt: skip
        assert run["dataset_version"] == res.version and steps["train"]["outputs"] == {"run_id": res.run_id}
        n_items = ws.query("SELECT eval_id, n_items FROM evaluations WHERE eval_id IN (?, ?) ORDER BY 1",
                           [base["eval_id"], res.eval_id])  # fmt: skip
        assert n_items[0][1] == n_items[1][1]
        runs = steps["synth"]["outputs"]["teacher_runs"] + steps["generate"]["outputs"]["teacher_runs"]
        led = ledger_summary(ws, run_ids=runs)
        assert res.cost == round_cost(ws, res.round_id) and led["cost_usd"] > 0
        assert res.cost.cost_usd == pytest.approx(led["cost_usd"])
        assert res.cost.requests == led["requests"] == int(ws.scalar(
            "SELECT count(*) FROM teacher_ledger WHERE kind IN ('synth', 'generate') AND run_id IN (SELECT unnest(?))",
            [runs]))  # fmt: skip

        h = round_history(ws)
        assert [(e.number, e.eval_id) for e in h.entries] == [(0, base["eval_id"]), (1, res.eval_id)]
        assert h.entries[1].n_added == res.n_added and h.entries[1].cost == res.cost
        # The checklist's rounds item reads the same rounds and says the history's stop signal.
        item = next(r for r in checklist(ws) if r.key == "rounds_until_the_bar_holds")
        assert (
            h.stop is not None
            and item.state == "ok"
            and item.detail == "stop after round 1: " + h.stop.message.removeprefix("stop: ")
        )
    assert main(["round", "history", "-w", str(wpath)]) == 0
    out = capsys.readouterr().out
    assert "round 0" in out and "round 1" in out and "95% intervals" in out
    assert (h.stop.message if h.stop else "no stop signal") in out


def test_a_budget_stop_and_cancels_are_continued_without_asking_twice(wpath: Path, fake: FakeOpenAI) -> None:
    with Workspace.open(wpath) as ws:
        sent = sum(fake.attempts.values())
        res = next_round(ws, _values(ws, n=4, budget=0.0))
        assert res.status == "budget" and [e.step for e in res.steps] == ["synth", "synth"]
        assert sum(fake.attempts.values()) == sent and round_records(ws, res.round_id) == {}
        assert ws.query("SELECT status FROM rounds") == [("budget",)]

        def cancel_at(step: str) -> tuple[Any, Any]:
            import threading

            ev = threading.Event()
            return ev, lambda e: ev.set() if (e.step, e.status) == (step, "started") else None

        ev, hook = cancel_at("filter")
        res = next_round(ws, _values(ws, n=4, budget=1.0), cancel=ev, on_step=hook)  # continued: same round
        assert res.status == "cancelled" and res.round_id == 1 and res.continued
        assert get_steps(ws, 1)["filter"]["status"] == "cancelled"
        made, asked = round_records(ws, 1), dict(fake.attempts)
        assert sum(len(v) for v in made.values()) > 0 and 0 < res.cost.cost_usd <= 1.0
        assert ws.scalar("SELECT count(*) FROM records WHERE record_id IN (SELECT unnest(?)) AND response IS NULL",
                         [[i for v in made.values() for i in v]]) == 0  # fmt: skip

        ev, hook = cancel_at("version")
        res = next_round(ws, _values(ws, n=99), cancel=ev, on_step=hook)  # the plan it started with stays
        assert [(e.step, e.status) for e in res.steps] == [
            ("synth", "skipped"), ("generate", "skipped"), ("filter", "started"), ("filter", "done"),
            ("dedupe", "started"), ("dedupe", "done"), ("version", "started"), ("version", "cancelled")]  # fmt: skip
        assert res.plan.slices[0].n_new == 4 and dict(fake.attempts) == asked and round_records(ws, 1) == made
        assert ws.query("SELECT options->>'budget' FROM rounds") == [("1.0",)]
        assert abandon_round(ws) == 1 and ws.scalar("SELECT status FROM rounds") == "abandoned"
        plan, rnd = pending(ws, _values(ws, n=4))
        assert rnd is None and plan.number == 1 and plan.version == "v1-r1"  # a new round is planned


def _distill(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), KEY_ENV: KEY}
    return subprocess.Popen([sys.executable, "-m", "distill", *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip


def test_a_round_killed_mid_training_continues_from_its_first_unfinished_step(
    wpath: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = _distill("round", "next", "-w", str(wpath), "-n", "4")
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "step 6/7 train started" in line:
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its training worker, as a crash would
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    with Workspace.open(wpath) as ws:
        steps = get_steps(ws, 1)
        assert [(k, v["status"]) for k, v in steps.items()] == [
            *((s, "done") for s in STEPS[:5]), ("train", "running")]  # fmt: skip
        assert ws.scalar("SELECT status FROM rounds") == "running"
        made = round_records(ws, 1)
        versions = ws.scalar("SELECT count(*) FROM dataset_versions")
    asked = dict(fake.attempts)
    assert main(["round", "next", "-w", str(wpath), "--dry-run"]) == 0  # the plan of the round it continues
    out = capsys.readouterr().out
    assert "round 1 (continued: running)" in out and "6. train: " in out and "[running" in out
    assert "teacher: nothing more to ask" in out and "estimated teacher cost" not in out
    proc = _distill("round", "next", "-w", str(wpath), "--json")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["continued"] and doc["status"] == "done"
    assert [(s["step"], s["status"]) for s in doc["steps"]][:5] == [(s, "skipped") for s in STEPS[:5]]
    assert dict(fake.attempts) == asked  # the teacher was not asked again
    with Workspace.open(wpath) as ws:
        assert round_records(ws, 1) == made and ws.scalar("SELECT count(*) FROM dataset_versions") == versions
        assert [(k, v["status"]) for k, v in get_steps(ws, 1).items()] == [(s, "done") for s in STEPS]
        runs = dict(ws.query("SELECT run_id, status FROM runs WHERE dataset_version = 'v1-r1'"))
        # Killed in training: the same run went on; killed while it exported its data: a new run, the old one failed.
        assert runs[doc["run_id"]] == "done" and set(runs.values()) <= {"done", "failed"} and len(runs) <= 2
        assert ws.query("SELECT status, eval_id FROM rounds") == [("done", doc["eval_id"])]
