from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
import pytest

from curation.datasets import export_training_file, get_version, version_members
from curation.errors import UserError
from curation.export import export_version
from curation.oversample import apply_oversample, open_requests, plan_oversample, request_inputs
from curation.rebalance import snapshot_version
from curation.records import insert_records, new_batch
from curation.splits import freeze_split, plan_split


@pytest.fixture
def versioned(ws):
    freeze_split(ws, plan_split(ws, share=0.25, seed=0, threshold=None))
    with ws.transaction() as cur:
        # edit + relabel before the version; a key-shaped string inside a prompt; a record without a response
        cur.execute("INSERT INTO reviews VALUES (3, 'accepted', 'ok', 'EDITED', 'refunds', 'ann', now())")
        cur.execute(
            'UPDATE records SET messages = json(\'[{"role":"user","content":"key sk-abcdefghijklmnopqrstuvwx"}]\') '
            "WHERE record_id = 4"
        )
        insert_records(cur, new_batch(cur, "x", "log"), [{"messages": [{"role": "user", "content": "no answer yet"}]}])
    snapshot_version(ws, "v1", split="heldout")
    return ws


def test_version_snapshots_review_edits(versioned):
    ws = versioned
    m = {x.record_id: x for x in version_members(ws, "v1")}
    assert m[3].slice == "refunds"
    assert 27 not in m  # no response: cannot be in a version
    with ws.transaction() as cur:  # a later edit does not change the version
        cur.execute("UPDATE reviews SET edited_response = 'LATER' WHERE record_id = 3")
    assert ws.scalar("SELECT response FROM dataset_members WHERE version='v1' AND record_id=3") == "EDITED"
    info = get_version(ws, "v1")
    assert info.split == "heldout" and [s["op"] for s in info.recipe][-1] == "snapshot"


def test_training_file_contract(versioned, tmp_path):
    p = export_training_file(versioned, "v1", tmp_path / "train.parquet")
    t = pq.read_table(p)
    assert [f.name for f in t.schema] == [
        "record_id",
        "split",
        "slice",
        "weight",
        "messages",
        "teacher_response",
        "reference",
    ]
    con = duckdb.connect()
    types = dict(con.execute(f"DESCRIBE SELECT * FROM read_parquet('{p}')").fetchall()[i][:2] for i in range(7))
    con.close()
    assert types == {
        "record_id": "BIGINT",
        "split": "VARCHAR",
        "slice": "VARCHAR",
        "weight": "DOUBLE",
        "messages": 'STRUCT("role" VARCHAR, "content" VARCHAR)[]',
        "teacher_response": "VARCHAR",
        "reference": "VARCHAR",
    }
    rows = {r["record_id"]: r for r in t.to_pylist()}
    assert (
        rows[3]["messages"][-1] == {"role": "assistant", "content": "EDITED"}
        and rows[3]["teacher_response"] == "EDITED"
    )
    assert {r["split"] for r in rows.values()} == {"train", "heldout"}


def test_exports_openai_and_messages_formats(versioned, tmp_path):
    ws = versioned
    res = export_version(ws, "v1", tmp_path, fmt="openai")
    train = [json.loads(line) for line in open(res.files["train"])]
    held = [json.loads(line) for line in open(res.files["heldout"])]
    assert len(train) + len(held) == get_version(ws, "v1").n_train + get_version(ws, "v1").n_heldout
    assert all(set(d) == {"messages"} for d in train)
    assert res.redacted == 1 and "sk-abc" not in open(res.files["train"]).read() + open(res.files["heldout"]).read()
    res2 = export_version(ws, "v1", tmp_path / "p", fmt="parquet")
    t = pq.read_table(res2.files["train"])
    assert "review_reason" not in t.column_names and "weight" in t.column_names
    res3 = export_version(ws, "v1", tmp_path / "n", fmt="jsonl", include_notes=True)
    docs = [json.loads(x) for x in open(res3.files["train"])] + [json.loads(x) for x in open(res3.files["heldout"])]
    assert any(d.get("review_reason") == "ok" for d in docs)


def test_oversample_weight_duplicate_and_requests(versioned):
    ws = versioned
    plan = plan_oversample(ws, "v1", {"security": 3}, mode="duplicate", cap=2)
    sec = [m for m in plan.members if m.slice == "security" and m.side == "train"]
    assert sec and all(m.copies == 2 for m in sec)
    info = apply_oversample(ws, plan, "v2")
    assert info.recipe[-1]["op"] == "oversample" and info.split == "heldout"
    w = plan_oversample(ws, "v1", {"shipping": 1.5})
    assert all(m.weight == 1.5 for m in w.members if m.slice == "shipping" and m.side == "train")
    assert w.after["shipping"] > w.before["shipping"]
    with pytest.raises(UserError):
        plan_oversample(ws, "v1", {"nope": 2})
    assert request_inputs(ws, {"security": 20}, dry_run=True) == []
    ids = request_inputs(ws, {"security": 20}, reason="weak slice")
    assert [(r["request_id"], r["slice"], r["n"]) for r in open_requests(ws)] == [(ids[0], "security", 20)]
