"""Several teachers' answers to the same prompts (issue 20): one record per prompt with every teacher's answer
beside it, from a JSON array file per teacher or JSON lines naming the model; dedupe sees prompts; undo removes a
teacher's answers again."""

from __future__ import annotations

import json
from pathlib import Path

from curation.dedupe import find_duplicates
from curation.importing import import_file, undo_import
from curation.teacher_answers import record_answers, teacher_names, word_diff
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl

PROMPTS = [("2+2?", "math", "4"), ("Capital of France?", "geo", "Paris"), ("Largest planet?", "sci", "Jupiter")]
ANSWERS = {"gpt4": ["4", "Paris", "Jupiter"], "claude": ["4", "Paris.", "Jupiter"], "llama": ["5", "Paris", "Saturn"]}


def _arrays(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for t, answers in ANSWERS.items():
        rows = [{"instruction": p, "output": a, "generator": t, "dataset": s, "ref": r}
                for (p, s, r), a in zip(PROMPTS, answers, strict=True)]  # fmt: skip
        out[t] = tmp_path / f"{t}.json"
        out[t].write_text(json.dumps(rows))
    return out


def test_three_json_array_files_become_one_record_per_prompt_with_three_named_answers(
    ws: Workspace, tmp_path: Path
) -> None:
    files = _arrays(tmp_path)
    first = import_file(ws, files["gpt4"], teacher_field="generator", slice_field="dataset", reference_field="ref")
    assert first.n_imported == 3
    for t in ("claude", "llama"):
        r = import_file(ws, files[t], teacher_field="generator", slice_field="dataset", reference_field="ref")
        assert (r.n_imported, r.n_attached) == (0, 3)
    assert ws.query("SELECT teacher_model, slice, reference FROM records ORDER BY record_id") == [
        ("gpt4", "math", "4"), ("gpt4", "geo", "Paris"), ("gpt4", "sci", "Jupiter")]  # fmt: skip
    assert teacher_names(ws) == [("claude", 3), ("gpt4", 3), ("llama", 3)]
    got = record_answers(ws, 1)
    assert [(a.teacher, a.response, a.own) for a in got] == [("gpt4", "4", True), ("claude", "4", False),
                                                             ("llama", "5", False)]  # fmt: skip
    # identical answers of two teachers are two answers, and exact dedupe finds no duplicate prompt
    assert find_duplicates(ws, kind="exact").n_removed == 0
    # the same file again adds nothing; naming the teacher with --teacher gives the same identity
    again = import_file(ws, files["claude"], teacher="claude", slice_field="dataset", reference_field="ref")
    assert (again.n_imported, again.n_attached, again.n_duplicates) == (0, 0, 3)
    # undo of a teacher's import removes exactly its answers
    undo_import(ws, 2)
    assert teacher_names(ws) == [("gpt4", 3), ("llama", 3)]
    assert ws.scalar("SELECT count(*) FROM records") == 3


def test_json_lines_name_the_teacher_by_the_model_field_or_teacher_option(ws: Workspace, tmp_path: Path) -> None:
    a = [log_record(f"q{i}", f'{{"intent": "x{i}"}}') for i in range(3)]
    for rec in a:
        rec["response"]["model"] = "teacher-a"
    b = [log_record(f"q{i}", f'{{"intent": "y{i}"}}') for i in range(3)]
    import_file(ws, write_jsonl(tmp_path / "a.jsonl", a))
    r = import_file(ws, write_jsonl(tmp_path / "b.jsonl", b), teacher="teacher-b")
    assert (r.n_imported, r.n_attached) == (0, 3)
    assert [(x.teacher, x.response) for x in record_answers(ws, 2)] == [
        ("teacher-a", '{"intent": "x1"}'), ("teacher-b", '{"intent": "y1"}')]  # fmt: skip
    # a third teacher named by its model field joins too
    c = log_record("q0", "other")
    c["response"]["model"] = "teacher-c"
    assert import_file(ws, write_jsonl(tmp_path / "c.jsonl", [c])).n_attached == 1
    # an answer with no teacher name to tell it apart is a new record, as before
    d = log_record("q0", "unnamed")
    del d["response"]["model"], d["request"]["model"]
    assert import_file(ws, write_jsonl(tmp_path / "d.jsonl", [d])).n_imported == 1


def test_word_diff_marks_words_only_in_one_answer() -> None:
    assert word_diff("the sky is blue", "the sky is grey today") == [
        ("=", "the sky is"), ("-", "blue"), ("+", "grey today")]  # fmt: skip
