"""Batch API imports (issue 17): answers attach to prompts already imported, undo empties exactly those, model
mismatches are reported, and unmatched ids group under one quarantine reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.errors import UserError
from curation.importing import import_file, list_batches, undo_import
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl


def batch_input_line(cid: str, prompt: str, model: str = "gpt-4o") -> dict:
    return {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": prompt}], "metadata": {"slice": "s"}}}  # fmt: skip


def batch_output_line(cid: str, answer: str, model: str = "gpt-4o-2024-08-06") -> dict:
    body = {"model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
            "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}  # fmt: skip
    return {"id": f"batch_req_{cid}", "custom_id": cid, "response": {"status_code": 200, "body": body}, "error": None}


def _files(tmp_path: Path, n: int, answered: range, models: dict[int, str] | None = None) -> tuple[Path, Path]:
    inp = write_jsonl(tmp_path / "batch_input.jsonl", [batch_input_line(f"r{i}", f"q{i}") for i in range(n)])
    out = write_jsonl(
        tmp_path / "batch_output.jsonl",
        [batch_output_line(f"r{i}", f"a{i}", (models or {}).get(i, "gpt-4o-2024-08-06")) for i in answered],
    )
    return inp, out


def _records(ws: Workspace) -> list[tuple]:
    return ws.query("SELECT record_id, batch_id, prompt, response, teacher_model FROM records ORDER BY record_id")


def test_the_output_attaches_its_answers_to_the_input_imported_first(ws: Workspace, tmp_path: Path) -> None:
    inp, out = _files(tmp_path, 4, range(3))
    first = import_file(ws, inp)
    assert (first.format, first.n_imported) == ("batch_input", 4)
    r = import_file(ws, out)
    assert (r.n_imported, r.n_attached, r.n_quarantined) == (0, 3, 1)  # r3 has no result
    assert _records(ws) == [
        (1, 1, "q0", "a0", "gpt-4o-2024-08-06"),
        (2, 1, "q1", "a1", "gpt-4o-2024-08-06"),
        (3, 1, "q2", "a2", "gpt-4o-2024-08-06"),
        (4, 1, "q3", None, "gpt-4o"),
    ]
    assert ws.scalar("SELECT count(*) FROM records WHERE batch_id = ?", [r.batch_id]) == 0
    assert any("3 answer(s) attached" in w for w in r.warnings)
    assert [b["n_attached"] for b in list_batches(ws)] == [3, 0]
    # the same output again adds nothing: its answers are already attached
    again = import_file(ws, out)
    assert (again.n_imported, again.n_attached, again.n_duplicates) == (0, 0, 3)
    assert ws.scalar("SELECT count(*) FROM records") == 4


def test_undoing_the_output_empties_what_it_attached_and_nothing_else(ws: Workspace, tmp_path: Path) -> None:
    inp, out = _files(tmp_path, 3, range(2))
    import_file(ws, write_jsonl(tmp_path / "other.jsonl", [log_record("unrelated")]))
    import_file(ws, inp)
    before = _records(ws)
    r = import_file(ws, out)
    assert r.n_attached == 2
    assert undo_import(ws, r.batch_id) == 0  # no record of its own to remove
    assert _records(ws) == before
    assert ws.scalar("SELECT count(*) FROM attached_answers") == 0
    assert ws.query("SELECT mean_logprob, finish_reason, prompt_tokens FROM records WHERE prompt = 'q0'") == [
        (None, None, None)
    ]
    # and it can be imported again, attaching the same answers
    assert import_file(ws, out).n_attached == 2


def test_undoing_the_input_asks_before_dropping_attached_answers(ws: Workspace, tmp_path: Path) -> None:
    inp, out = _files(tmp_path, 2, range(2))
    first = import_file(ws, inp)
    import_file(ws, out)
    with pytest.raises(UserError, match="2 answers attached by later imports"):
        undo_import(ws, first.batch_id)
    assert undo_import(ws, first.batch_id, force=True) == 2
    assert ws.scalar("SELECT count(*) FROM attached_answers") == 0


def test_answers_attach_one_to_one_to_repeated_prompts(ws: Workspace, tmp_path: Path) -> None:
    """Two waiting copies of a prompt and three answers to it: two fill the copies, the third is a new record."""
    prompts = write_jsonl(tmp_path / "p.jsonl", [batch_input_line("x", "same"), batch_input_line("y", "same")])
    import_file(ws, prompts)
    answers = write_jsonl(
        tmp_path / "answers.jsonl", [log_record("same", f"answer {i}", system=None) for i in range(3)]
    )
    r = import_file(ws, answers)
    assert (r.n_attached, r.n_imported) == (2, 1)
    assert ws.query("SELECT batch_id, response FROM records ORDER BY record_id") == [
        (1, "answer 0"),
        (1, "answer 1"),
        (2, "answer 2"),
    ]


def test_a_model_other_than_requested_is_a_warning_with_counts(ws: Workspace, tmp_path: Path) -> None:
    models = {0: "gpt-4o-mini-2024-07-18", 1: "gpt-4o-mini-2024-07-18", 2: "gpt-3.5-turbo"}
    _, out = _files(tmp_path, 5, range(5), models)
    r = import_file(ws, out)
    expected = "3 answer(s) came from another model than requested (gpt-4o -> gpt-4o-mini-2024-07-18: 2, gpt-4o -> gpt-3.5-turbo: 1)"
    assert expected in r.warnings  # gpt-4o-2024-08-06 is gpt-4o's snapshot: the same model
    assert expected in json.loads(ws.scalar("SELECT warnings FROM import_batches WHERE batch_id = ?", [r.batch_id]))


def test_990_unmatched_ids_are_one_quarantine_reason(ws: Workspace, tmp_path: Path) -> None:
    _, out = _files(tmp_path, 1000, range(10))
    r = import_file(ws, out)
    assert (r.n_imported, r.n_quarantined) == (10, 990)
    assert ws.query("SELECT field, reason, count(*) FROM quarantine GROUP BY ALL") == [
        ("custom_id", "no result for this custom_id in the Batch output", 990)
    ]
    assert '"custom_id": "r999"' in ws.scalar("SELECT raw FROM quarantine WHERE line_no = 1000")


def test_output_ids_without_a_request_are_one_reason(ws: Workspace, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "batch_input.jsonl", [batch_input_line("r0", "q0"), batch_input_line("r0", "dup")])
    out = write_jsonl(tmp_path / "batch_output.jsonl", [batch_output_line(f"r{i}", "a") for i in range(30)])
    r = import_file(ws, out, batch_input=inp)
    assert r.n_imported == 1
    assert ws.query("SELECT reason, count(*) FROM quarantine GROUP BY ALL ORDER BY 2") == [
        ("custom_id appears twice in the Batch input (the first is used)", 1),
        ("no request with this custom_id in the Batch input", 29),
    ]


def test_provider_errors_group_by_their_code(ws: Workspace, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "batch_input.jsonl", [batch_input_line(f"r{i}", f"q{i}") for i in range(3)])
    lines = [
        {"id": f"o{i}", "custom_id": f"r{i}", "response": {"status_code": 400, "body": {"error": {
            "code": "context_length_exceeded", "message": f"your messages resulted in {9000 + i} tokens"}}}}
        for i in range(3)
    ]  # fmt: skip
    out = write_jsonl(tmp_path / "batch_output.jsonl", lines)
    import_file(ws, out, batch_input=inp)
    assert ws.query("SELECT reason, count(*) FROM quarantine GROUP BY ALL") == [
        ("the request failed with HTTP 400: context_length_exceeded", 3)
    ]


def test_table_answers_attach_to_table_prompts(ws: Workspace, tmp_path: Path) -> None:
    """The same step on the CSV path: prompts from one sheet, answers to two of them from another."""
    (tmp_path / "prompts.csv").write_text("prompt\nfirst\nsecond\nthird\n")
    (tmp_path / "answers.csv").write_text("prompt,response\nsecond,two\nthird,three\nfourth,four\n")
    import_file(ws, tmp_path / "prompts.csv")
    r = import_file(ws, tmp_path / "answers.csv")
    assert (r.n_attached, r.n_imported) == (2, 1)
    assert ws.query("SELECT batch_id, prompt, response FROM records ORDER BY record_id") == [
        (1, "first", None), (1, "second", "two"), (1, "third", "three"), (2, "fourth", "four"),
    ]  # fmt: skip
