"""Helpers for round tests: a workspace where a tiny student was trained on a curated version and evaluated, every
slice failing its bar (the student is a random 2-layer model), with a teacher aimed at the fake OpenAI server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from curation.rebalance import snapshot_version
from curation.records import finish_batch, insert_records, new_batch
from curation.splits import freeze_split, plan_split
from curation.teacher.config import save_teacher
from curation.teacher.engine import generate
from curation.workspace import Workspace
from tests.teacher.conftest import teacher_cfg, ticket_rows
from tests.teacher.fake_openai import triage_answer
from train.bars import QualityBar, set_bar
from train.config import RunConfig
from train.evaluate import evaluate_run
from train.launcher import run_training

N_TICKETS = 48


def tiny_config(tiny_model: Path) -> RunConfig:
    """Two steps of the tiny model: enough for a run with an adapter to evaluate."""
    return RunConfig(base_model=str(tiny_model), max_steps=2, batch_size=4, eval_every=2, eval_max_examples=4,
                     max_length=96, precision="fp32")  # fmt: skip


def build_base(path: Path, tiny_model: Path, base_url: str) -> dict[str, Any]:
    """48 tickets over three slices, answered by the fake teacher ``big`` (every other one with a reference), a frozen
    25% held-out split, version v1, a bar on the intent, a run of the tiny model on v1 and its tuned evaluation."""
    with Workspace.open(path) as ws:
        rows = ticket_rows(N_TICKETS)
        for i, r in enumerate(rows):
            if i % 2 == 0:
                r["reference"] = triage_answer(r["messages"][-1]["content"])
        with ws.transaction() as cur:
            b = new_batch(cur, "tickets.jsonl", "log")
            insert_records(cur, b, rows)
            finish_batch(cur, b, n_lines=len(rows), n_imported=len(rows), n_duplicates=0, n_quarantined=0)
        save_teacher(ws, teacher_cfg(base_url))
        assert generate(ws, "big").done == N_TICKETS
        split = plan_split(ws, share=0.25, seed=0, threshold=None)
        freeze_split(ws, split)
        snapshot_version(ws, "v1", split="heldout")
        set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.9))
        res = run_training(ws, tiny_config(tiny_model), dataset_version="v1")
        assert res.status == "done", res.error
        (tuned,) = evaluate_run(ws, res.run_id, baseline=False, max_new_tokens=8)
        return {"heldout": sorted(split.heldout), "run_id": res.run_id, "eval_id": tuned.eval_id,
                "failing": sorted(s.slice for s in tuned.slices if not s.passed)}  # fmt: skip


def copy_workspace(src: Path, dest_dir: Path) -> Path:
    """A copy of a closed workspace file and its artifacts folder (runs, adapters) in ``dest_dir``."""
    dest = dest_dir / src.name
    shutil.copyfile(src, dest)
    art = src.with_name(src.stem + ".artifacts")
    if art.exists():
        shutil.copytree(art, dest.with_name(dest.stem + ".artifacts"))
    return dest


def heldout_prompts(ws: Workspace) -> dict[int, str]:
    """Held-out record id -> prompt."""
    return {int(r): str(p) for r, p in ws.query("SELECT r.record_id, r.prompt FROM records r JOIN split_members s "
                                                 "USING (record_id) WHERE s.side = 'heldout' ORDER BY 1")}  # fmt: skip
