"""A small served workspace: records from the bundled sample's tickets, a dataset version, a finished run of it, a
quality bar and a priced teacher; and the sample's prompts per slice for live traffic."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

from curation.datasets import Member, create_version
from curation.records import finish_batch, insert_records, new_batch, prompt_text
from curation.teacher.config import TeacherConfig, save_teacher
from curation.workspace import Workspace
from tests.monitor.logfix import TEACHER_MODEL
from train.bars import QualityBar, set_bar
from train.config import RunConfig
from train.store import create_run, update_run

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "production_logs.jsonl.gz"
TRAINED = ("billing", "shipping")
N_TRAIN = 60  # training prompts per slice
VERSION = "prod-v1"


@lru_cache(maxsize=1)
def sample_prompts() -> dict[str, list[str]]:
    """Distinct single-turn prompts of the sample per slice (``metadata.product_area``), in file order."""
    out: dict[str, list[str]] = {}
    seen: set[str] = set()
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            msgs = doc["request"]["messages"]
            text = prompt_text(msgs)
            if len(msgs) != 2 or text in seen:
                continue
            seen.add(text)
            out.setdefault(doc["metadata"]["product_area"], []).append(text)
    return out


def build_served_workspace(path: Path) -> Path:
    """Records of the trained slices' first ``N_TRAIN`` prompts (answered by ``TEACHER_MODEL``), version
    ``VERSION`` of them, a finished run 1 of it, the default bar and a teacher with prices."""
    prompts = sample_prompts()
    with Workspace.open(path) as ws:
        rows = [{"messages": [{"role": "user", "content": p}], "response": json.dumps({"intent": s}), "slice": s,
                 "teacher_model": TEACHER_MODEL, "source_file": "sample", "source_line": k}
                for s in TRAINED for k, p in enumerate(prompts[s][:N_TRAIN])]  # fmt: skip
        with ws.transaction() as cur:
            b = new_batch(cur, "sample", "log")
            ids = insert_records(cur, b, rows)
            finish_batch(cur, b, n_lines=len(rows), n_imported=len(ids), n_duplicates=0, n_quarantined=0)
        members = [
            Member(i, "train" if k % 10 else "heldout", r["slice"])
            for k, (i, r) in enumerate(zip(ids, rows, strict=True))
        ]
        create_version(ws, VERSION, members, [{"op": "fixture"}], split=None)
        run_id = create_run(ws, RunConfig(), dataset_version=VERSION, group_id=None)
        update_run(ws, run_id, status="done")
        set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.8,
                               student_price_per_hour=3.6))  # fmt: skip
        save_teacher(ws, TeacherConfig("gpt4o", "http://127.0.0.1:9/v1", "gpt-4o", "OPENAI_API_KEY",
                                       price_in_per_m=2.5, price_out_per_m=10.0, terms_ack=True))  # fmt: skip
    return path
