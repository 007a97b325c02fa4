"""Slices and budgets that do what they say (issue 21, the intent-routing log): a slice field the detector misses,
a slice field given for records already imported, split counts, exact budgets, uniform targets, rows as training
receives them, and a confidence cut-off that catches nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from curation.datasets import describe_rows, export_training_file, get_version
from curation.dedupe import find_duplicates
from curation.dedupe_runs import apply_dedupe
from curation.filters import run_filter
from curation.importing import import_file
from curation.rebalance import Target, apply_rebalance, plan_rebalance
from curation.records import insert_records, new_batch
from curation.slices import define_by_field, slice_shares, use_slicing
from curation.splits import plan_split
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl


def _routing_log(path: Path, field: str) -> Path:
    queues = ["cards", "loans", "travel"]
    rows = [
        log_record(f"routing question number {i} about {queues[i % 3]}", slice_=None,
                   extra_meta={field: queues[i % 3], "request_id": f"req-{i}"})
        for i in range(12)
    ]  # fmt: skip
    return write_jsonl(path, rows)


def test_import_warns_when_every_record_lands_in_none_and_names_the_fields_that_could_slice(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "w.duckdb")
    log = _routing_log(tmp_path / "routing.jsonl", "queue")
    r = import_file(ws, log)
    (warning,) = [w for w in r.warnings if "(none)" in w]
    assert "metadata.queue (3 values)" in warning and "request_id" not in warning  # an id is no slice
    assert "distill slices define NAME --field PATH && distill slices use NAME" in warning
    # Given for records already imported, the slice field would add nothing: say how to slice them instead.
    again = import_file(ws, log, slice_field="metadata.queue")
    assert again.n_imported == 0 and again.n_duplicates == 12
    assert any(
        "already in the workspace and keep their slice" in w and "slices define queue" in w for w in again.warnings
    )
    define_by_field(ws, "queue", "metadata.queue")  # what the warning names: no re-import
    use_slicing(ws, "queue")
    assert {s.slice: s.n for s in slice_shares(ws)} == {"cards": 4, "loans": 4, "travel": 4}
    ws.close()


def test_a_domain_field_is_detected_as_the_slice(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "w.duckdb")
    r = import_file(ws, _routing_log(tmp_path / "routing.jsonl", "domain"))
    assert r.options["slice_field"] == "metadata.domain" and not [w for w in r.warnings if "(none)" in w]
    assert {s.slice for s in slice_shares(ws)} == {"cards", "loans", "travel"}
    ws.close()


def test_split_make_counts_only_usable_records(ws: Workspace) -> None:
    billing = ws.scalar("SELECT prompt FROM records WHERE slice = 'billing' ORDER BY record_id LIMIT 1")
    rows = [{"messages": [{"role": "user", "content": billing + "!" * k}], "response": "{}", "slice": "billing"}
            for k in (1, 2)]  # fmt: skip
    with ws.transaction() as cur:
        insert_records(cur, new_batch(cur, "more.jsonl", "log"), rows)
        cur.execute("INSERT INTO reviews VALUES (3, 'rejected', 'bad', NULL, NULL, 'ann', now())")
    apply_dedupe(ws, find_duplicates(ws, kind="exact"))  # the two copies are removed
    per = {s: (usable, held, other) for s, usable, held, other in plan_split(ws, share=0.25, threshold=None).per_slice}
    assert per["billing"][0] == 11 and per["billing"][2] == 3  # 14 records: 2 duplicates and 1 rejected apart
    assert per["billing"][1] <= per["billing"][0]
    assert per["security"] == (2, 1, 0)


def test_uniform_target_and_a_budget_give_exactly_n_training_rows(ws: Workspace, tmp_path: Path) -> None:
    plan = plan_rebalance(ws, Target("uniform"), budget=20, select="random")
    rows = {r.slice: r for r in plan.rows}
    assert {s: r.target_share for s, r in rows.items()} == {s: 0.25 for s in rows}
    assert plan.train_rows == 20 and {s: r.rows for s, r in rows.items()} == {
        "billing": 7, "login": 7, "shipping": 4, "security": 2}  # fmt: skip
    assert rows["security"].action == "up-weight" and rows["security"].weight == 3.5  # 7 / 2: the rest of its share
    info = apply_rebalance(ws, plan, "u20")
    assert info.n_train == get_version(ws, "u20").n_train == 20
    train = pq.read_table(export_training_file(ws, "u20", tmp_path / "u20.parquet")).to_pylist()
    assert sum(1 for r in train if r["split"] != "heldout") == 20  # what training receives


def test_a_duplicating_version_reports_the_rows_training_receives(ws: Workspace, tmp_path: Path) -> None:
    plan = plan_rebalance(ws, Target("uniform"), budget=30, mode="duplicate", max_factor=3, select="random")
    assert plan.train_rows == 30
    info = apply_rebalance(ws, plan, "d30")
    assert info.n_train == 30
    records = ws.scalar("SELECT count(*) FROM dataset_members WHERE version = 'd30' AND side = 'train'")
    assert describe_rows(ws, "d30").startswith(f"30 training rows ({records} records, {30 - records} extra copies")
    train = pq.read_table(export_training_file(ws, "d30", tmp_path / "d30.parquet")).to_pylist()
    assert sum(1 for r in train if r["split"] != "heldout") == 30


def test_a_confidence_cut_off_that_catches_nothing_says_where_the_scores_are(ws: Workspace) -> None:
    spec = {"kind": "confidence", "metric": "mean_logprob", "min": -2.5, "field": None}
    rep = run_filter(ws, "conf", spec, "drop")
    assert rep.n_failed == 0
    q = rep.score_quantiles
    assert "no record is below the cut-off: scores range" in rep.range_hint and -2.5 < q["min"] <= q["max"] <= 0
    spec["min"] = q["median"]
    assert run_filter(ws, "conf", spec, "drop").range_hint == ""
