"""Synthetic inputs for a weak slice, and the Batch API mode (submit, poll, collect, resume)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from curation.teacher.batch import batch_status, collect_batch, get_job, submit_batch
from curation.teacher.engine import generate
from curation.teacher.selection import Selection
from curation.teacher.synth import fulfil_requests, parse_prompts, synth_inputs, synthetic_share
from curation.workspace import Workspace
from tests.teacher.conftest import output_counts
from tests.teacher.fake_openai import FakeOpenAI


def test_synthetic_inputs_land_in_the_slice_deduplicated(tws: Workspace, server: FakeOpenAI) -> None:
    with tws.transaction() as cur:
        cur.execute("INSERT INTO input_requests (slice, n, reason, created_at) VALUES ('shipping', 6, 'weak', ?)",
                    [datetime.now()])  # fmt: skip
    [res] = fulfil_requests(tws, "big")
    # the fake teacher returns 6: four new, one copy of an example, one repeat after normalisation; asked for the
    # 2 missing it returns only such duplicates, twice (the two extra rounds), so 4 land
    assert (res.n_inserted, res.n_duplicates, res.n_requests) == (4, 6, 3)
    rows = tws.query_dicts("SELECT * FROM records WHERE origin = 'synthetic'")
    assert len(rows) == 4 and {r["slice"] for r in rows} == {"shipping"}
    assert all(r["response"] is None and json.loads(r["messages"])[0]["role"] == "system" for r in rows)
    assert tws.query("SELECT status, n_generated FROM input_requests") == [("done", 4)]
    share = {s.slice: s for s in synthetic_share(tws)}
    assert (share["shipping"].records, share["shipping"].synthetic) == (8, 4)
    assert share["shipping"].share == pytest.approx(0.5) and share["billing"].synthetic == 0
    # asking again never inserts a prompt that is already there
    again = synth_inputs(tws, "big", "shipping", 6)
    texts = [r[0] for r in tws.query("SELECT lower(prompt) FROM records")]
    assert len(texts) == len(set(texts)) and 0 < again.n_inserted <= 6  # other examples: other prompts
    # then the teacher answers them like any record without a response
    gen = generate(tws, "big", Selection(slice="shipping"))
    assert (
        gen.failed == 0
        and tws.scalar("SELECT count(*) FROM records WHERE response IS NULL AND slice = 'shipping'") == 0
    )
    assert tws.scalar("SELECT count(*) FROM teacher_ledger WHERE kind = 'synth' AND status = 'ok'") == (
        res.n_requests + again.n_requests
    )


def test_parse_prompts_shapes() -> None:
    assert parse_prompts('{"prompts": ["a", " b ", 3]}') == ["a", "b"]
    assert parse_prompts('```json\n["x", "y"]\n```') == ["x", "y"]
    assert parse_prompts("1. first\n- second\n\n") == ["first", "second"]
    assert parse_prompts(None) == [] and parse_prompts('{"n": 1}') == []


def test_batch_submit_poll_collect_and_resume(tws: Workspace, server: FakeOpenAI, tmp_path: Path) -> None:
    generate(tws, "big", Selection(limit=2))  # two answered synchronously: they come from the cache, not the batch
    with tws.transaction() as cur:
        cur.execute("DELETE FROM teacher_outputs WHERE record_id = 1")
        cur.execute("UPDATE records SET response = NULL WHERE record_id = 1")
    server.batch_failed_custom_ids = set()
    job = submit_batch(tws, "big")
    assert job.n_requests == 10 and job.provider_batch_id == "batch_1" and job.status == "validating"
    assert output_counts(tws)[1] == 1  # cache hit attached at once
    lines = [json.loads(ln) for ln in Path(job.input_path).read_text().splitlines()]
    failing = lines[0]["custom_id"]
    server.batch_failed_custom_ids = {failing}
    n_records = tws.scalar("SELECT count(*) FROM records")
    # a restart: a fresh Workspace object resumes the job by its id
    path = tws.path
    tws.close()
    ws = Workspace.open(path)
    try:
        assert batch_status(ws, job.job_id).status == "in_progress"
        done = collect_batch(ws, job.job_id, wait=True, poll_s=0.01)
        assert done.status == "collected" and done.n_attached == 9
        assert ws.scalar("SELECT count(*) FROM records") == n_records  # the imported copies were folded back
        counts = output_counts(ws)
        failed_rid = int(failing[1:].split("-")[0])
        assert counts[failed_rid] == 0 and {n for r, n in counts.items() if r != failed_rid} == {1}
        assert ws.scalar("SELECT count(*) FROM quarantine WHERE batch_id = ?", [done.import_batch_id]) == 1
        assert ws.query("SELECT status, count(*) FROM teacher_ledger WHERE kind = 'batch' GROUP BY 1 ORDER BY 1") == [
            ("failed", 1), ("ok", 9)]  # fmt: skip
        assert ws.scalar("SELECT count(*) FROM teacher_outputs WHERE mode = 'batch' AND cost_usd > 0") == 9
        # collecting again is a no-op
        assert collect_batch(ws, job.job_id).n_attached == 9
        assert get_job(ws, job.job_id).status == "collected"
        # the failed one can be generated synchronously afterwards
        assert generate(ws, "big").done == 1
        assert set(output_counts(ws).values()) == {1}
    finally:
        ws.close()
