"""Every import format, on a real workspace."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl

from curation.importing import detect_format, import_file, preview
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl


def test_proxy_log_fast_path(ws: Workspace, tmp_path: Path) -> None:
    recs = [
        log_record(f"ticket {i}", slice_="billing" if i % 3 else "security", logprobs=[-0.1, -2.0]) for i in range(30)
    ]
    recs[4]["metadata"]["reference"] = '{"intent": "refund"}'
    path = write_jsonl(tmp_path / "logs.jsonl", recs)
    det = detect_format(path)
    assert det.format == "log" and det.slice_field == "metadata.product_area"
    r = import_file(ws, path)
    assert (r.n_lines, r.n_imported, r.n_quarantined) == (30, 30, 0)
    row = ws.query_dicts("SELECT * FROM records WHERE source_line = 5")[0]
    assert row["prompt"] == "ticket 4"
    assert row["response"] == '{"intent": "refund"}'
    assert row["slice"] == "security" if 4 % 3 == 0 else row["slice"] == "billing"
    assert row["teacher_model"] == "gpt-4o-2024-08-06"
    assert row["prompt_tokens"] == 12 and row["latency_ms"] == 420.5
    assert str(row["logged_at"]) == "2026-01-01 10:00:00"
    assert abs(row["mean_logprob"] - (-1.05)) < 1e-9 and row["min_logprob"] == -2.0
    assert json.loads(row["messages"])[0] == {"role": "system", "content": "Triage the ticket."}
    assert json.loads(row["request_params"]) == {"model": "gpt-4o", "temperature": 0}
    assert json.loads(row["response_logprobs"])[1]["logprob"] == -2.0
    assert ws.query("SELECT source_line, reference FROM records WHERE reference IS NOT NULL") == [
        (5, '{"intent": "refund"}')
    ]
    slices = dict(ws.query("SELECT slice, count(*) FROM records GROUP BY 1"))
    assert slices == {"billing": 20, "security": 10}


def test_explicit_slice_and_reference_fields(ws: Workspace, tmp_path: Path) -> None:
    recs = [log_record("a", extra_meta={"tier": "pro", "gold": "x"}), log_record("b", extra_meta={"tier": "free"})]
    path = write_jsonl(tmp_path / "l.jsonl", recs)
    import_file(ws, path, slice_field="metadata.tier", reference_field="metadata.gold")
    assert ws.query("SELECT slice, reference FROM records ORDER BY source_line") == [("pro", "x"), ("free", None)]


def test_multi_turn_kept_whole_and_gzip(ws: Workspace, tmp_path: Path) -> None:
    rec = log_record("second question")
    rec["request"]["messages"] = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer one"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    path = tmp_path / "l.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(rec) + "\n")
    r = import_file(ws, path)
    assert r.n_imported == 1
    msgs, prompt = ws.query("SELECT messages, prompt FROM records")[0]
    assert len(json.loads(msgs)) == 4 and prompt == "second question"


def test_finetune_format(ws: Workspace, tmp_path: Path) -> None:
    lines = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a1"},
                {"role": "user", "content": "q2"},
                {"role": "assistant", "content": "a2"},
            ],
            "metadata": {"slice": "multi"},
        },
        {"messages": [{"role": "user", "content": "no answer yet"}]},
    ]
    path = write_jsonl(tmp_path / "ft.jsonl", lines)
    assert detect_format(path).format == "finetune"
    r = import_file(ws, path)
    assert r.n_imported == 3
    rows = ws.query("SELECT messages, response, slice FROM records ORDER BY source_line")
    assert rows[0][1] == "hello" and len(json.loads(rows[0][0])) == 1
    assert rows[1][1] == "a2" and [m["content"] for m in json.loads(rows[1][0])] == ["s", "q1", "a1", "q2"]
    assert rows[1][2] == "multi"
    assert rows[2][1] is None  # prompt-only: the teacher can answer it later


def _batch_files(tmp_path: Path) -> tuple[Path, Path]:
    inp = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}], "metadata": {"slice": "s"}}}
        for i in range(4)
    ]  # fmt: skip
    out = [
        {"id": "o2", "custom_id": "r2", "response": {"status_code": 200, "body": {"model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "a2"}, "finish_reason": "stop"}]}}, "error": None},
        {"id": "o0", "custom_id": "r0", "response": {"status_code": 200, "body": {"model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "a0"}, "finish_reason": "stop"}]}}, "error": None},
        {"id": "o1", "custom_id": "r1", "response": {"status_code": 429, "body": {"error": {"message": "rate limited"}}},
         "error": None},
        {"id": "o9", "custom_id": "r9", "response": {"status_code": 200, "body": {"choices": [
            {"index": 0, "message": {"role": "assistant", "content": "orphan"}}]}}, "error": None},
    ]  # fmt: skip
    return write_jsonl(tmp_path / "batch_input.jsonl", inp), write_jsonl(tmp_path / "batch_output.jsonl", out)


def test_batch_output_joined_by_custom_id(ws: Workspace, tmp_path: Path) -> None:
    inp, out = _batch_files(tmp_path)
    det = detect_format(out)
    assert det.format == "batch" and det.batch_input == inp
    r = import_file(ws, out)
    assert r.n_imported == 2
    assert ws.query("SELECT prompt, response, slice FROM records ORDER BY prompt") == [
        ("q0", "a0", "s"),
        ("q2", "a2", "s"),
    ]
    q = ws.query("SELECT source_file, line_no, reason FROM quarantine ORDER BY source_file, line_no")
    reasons = {(Path(f).name, n): why for f, n, why in q}
    assert "HTTP 429: rate limited" in reasons[("batch_output.jsonl", 3)]
    assert "no request with this custom_id" in reasons[("batch_output.jsonl", 4)]
    # one reason for every unanswered request (they group in `distill stats`); the id is in the quarantined line
    assert reasons[("batch_input.jsonl", 4)] == "no result for this custom_id in the Batch output"
    assert '"r3"' in ws.scalar("SELECT raw FROM quarantine WHERE source_file LIKE '%batch_input.jsonl' AND line_no = 4")
    assert r.n_quarantined == 3


def test_batch_output_without_input_is_quarantined(ws: Workspace, tmp_path: Path) -> None:
    _, out = _batch_files(tmp_path)
    (tmp_path / "batch_input.jsonl").unlink()
    r = import_file(ws, out)
    assert r.n_imported == 0 and r.n_quarantined == 4
    assert any("--batch-input" in w for w in r.warnings)


def test_batch_input_alone_gives_prompt_only_records(ws: Workspace, tmp_path: Path) -> None:
    inp, _ = _batch_files(tmp_path)
    r = import_file(ws, inp)
    assert r.format == "batch_input" and r.n_imported == 4
    assert ws.scalar("SELECT count(*) FROM records WHERE response IS NULL") == 4


def test_csv_with_mapping_and_bad_rows(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("text,category,extra\nhello there,greet,1\ntoo,many,columns,in,row\n,empty,3\nbye now,farewell,4\n")
    r = import_file(ws, path, mapping={"prompt": "text", "response": "category", "slice": "category"})
    rows = ws.query("SELECT source_line, prompt, response, slice, metadata FROM records ORDER BY source_line")
    assert [x[1] for x in rows] == ["hello there", "bye now"]
    assert rows[0][4] == '{"extra":"1"}'
    assert r.n_quarantined >= 1
    lines = [x[0] for x in ws.query("SELECT line_no FROM quarantine ORDER BY line_no")]
    assert all(n >= 2 for n in lines)


def test_parquet_table(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({"question": ["q1", "q2", None], "answer": ["a1", "a2", "a3"], "app": ["x", "y", "x"]}).write_parquet(
        path
    )
    r = import_file(ws, path, mapping={"slice": "app"})
    assert r.n_imported == 2 and r.n_quarantined == 1
    assert ws.query("SELECT line_no, reason FROM quarantine") == [(3, "empty prompt")]
    assert ws.query("SELECT prompt, response, slice FROM records ORDER BY 1") == [("q1", "a1", "x"), ("q2", "a2", "y")]


def test_jsonl_table_detected_mapping(ws: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "p1", "response": " r1", "target": "t1", "n": 3}])
    det = detect_format(path)
    assert det.format == "table" and det.mapping == {"prompt": "prompt", "response": "response", "reference": "target"}
    import_file(ws, path)
    assert ws.query("SELECT prompt, response, reference, metadata FROM records") == [("p1", "r1", "t1", '{"n":3}')]


def test_preview_shows_records_and_errors(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "l.jsonl", [log_record("one"), b"not json", log_record("three")])
    rows = preview(path, limit=5)
    assert [r["line_no"] for r in rows] == [1, 2, 3]
    assert rows[0]["prompt"] == "one" and rows[1]["error"] == "not valid JSON"


def test_field_paths_read_the_logged_values_not_the_record_columns(tmp_path: Path) -> None:
    """`response.model` is the logged response's model (the record's `response` is the answer text), and
    `latency_ms` the logged text, on both paths."""
    recs = [log_record(f"t{i}") for i in range(3)]
    clean = write_jsonl(tmp_path / "clean.jsonl", recs)
    dirty = write_jsonl(tmp_path / "dirty.jsonl", [*recs, b"{not json"])
    for name, path in (("fast", clean), ("careful", dirty)):
        with Workspace.open(tmp_path / f"{name}.duckdb") as w:
            r = import_file(w, path, slice_field="latency_ms", reference_field="response.model")
            assert r.n_imported == 3, name
            assert w.query("SELECT DISTINCT slice, reference, latency_ms FROM records") == [
                ("420.5", "gpt-4o-2024-08-06", 420.5)
            ], name


def test_fast_and_careful_paths_store_the_same_records(tmp_path: Path, monkeypatch) -> None:
    """The fast path (typed read) and the careful path (line by line) must agree field for field."""
    import curation.importing.careful as careful

    paths_taken: list[str] = []
    real_careful = careful.import_careful

    def spy(*args, **kwargs):
        paths_taken.append("careful")
        return real_careful(*args, **kwargs)

    monkeypatch.setattr(careful, "import_careful", spy)
    recs = [log_record(f"ticket {i}", logprobs=[-0.1 * i, -2.0]) for i in range(5)]
    recs[1]["request"]["messages"].append({"role": "assistant", "content": "earlier answer"})
    recs[1]["request"]["messages"].append({"role": "user", "content": [{"type": "text", "text": "part one"}]})
    recs[2]["response"]["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]}
    recs[3]["response"]["choices"][0].pop("logprobs")
    recs[3]["metadata"] = {"product_area": "shipping", "tier": "pro", "nested": {"a": [1, 2]}}
    recs[4]["request"]["messages"][-1]["content"] = 'ünïcödé ✓ "quoted"'
    # Odd scalars: the fast path reads these as text, the careful path extracts them from JSON; same values.
    recs[0]["response"].update(model=-1.5e-7, created=1.7e9, usage={"prompt_tokens": 40.0, "completion_tokens": "12"})
    recs[0].update(started_at=1767225600, latency_ms="250.5")
    recs[4]["response"]["choices"][0]["finish_reason"] = {"odd": 1}
    recs[4].update(timestamp="2026-10-01T12:00:00Z", latency_ms=1.5e-7)
    clean = write_jsonl(tmp_path / "clean.jsonl", recs)
    dirty = write_jsonl(tmp_path / "dirty.jsonl", [*recs, b"{not json"])
    cols = (
        "source_line, messages, prompt, response, response_logprobs, teacher_model, finish_reason, slice, reference, "
        "metadata, request_params, prompt_tokens, completion_tokens, latency_ms, logged_at, content_hash, "
        "mean_logprob, min_logprob"
    )
    rows = []
    for name, path in (("fast", clean), ("careful", dirty)):
        with Workspace.open(tmp_path / f"{name}.duckdb") as w:
            r = import_file(w, path)
            assert r.n_imported == 5 and r.n_quarantined == (1 if name == "careful" else 0)
            rows.append(w.query(f"SELECT record_id, {cols} FROM records ORDER BY source_line"))
    assert paths_taken == ["careful"]  # the clean file went the fast way, the dirty one the careful way
    assert rows[0] == rows[1]
    assert [r[0] for r in rows[0]] == [1, 2, 3, 4, 5]
    assert rows[0][1][3] == "part one" and rows[0][2][4] is not None
    assert rows[0][0][6] == "-1.5e-07" and rows[0][0][12:15] == (40, 12, 250.5)  # model, tokens, latency
    assert rows[0][4][7] == '{"odd":1}' and rows[0][4][14] == 1.5e-7
    # a numeric started_at is no timestamp, so the response's created (1.7e9) dates record 1
    assert str(rows[0][0][15]) == "2023-11-14 22:13:20" and str(rows[0][4][15]) == "2026-10-01 12:00:00"
