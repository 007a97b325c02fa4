"""Hostile files (issue 17): deep nesting, broken gzip, JSON arrays, explicit table format, Python reprs.

Each ended in a traceback or in every line quarantined before; now the readable part imports and the rest is
quarantined or named in a warning.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from curation.browse import RecordFilter, count_records
from curation.importing import import_file, preview
from curation.importing.lines import count_lines
from curation.importing.streams import StreamError
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl

DEEP = b"[" * 10_000 + b"]" * 10_000


def _reasons(ws: Workspace) -> dict[int, str]:
    return dict(ws.query("SELECT line_no, reason FROM quarantine"))


@pytest.mark.parametrize("fmt", [None, "log"])
def test_a_line_nested_10000_deep_near_the_top_is_quarantined(ws: Workspace, tmp_path: Path, fmt: str | None) -> None:
    deep_object = b'{"a": ' * 5_000 + b"1" + b"}" * 5_000
    path = write_jsonl(tmp_path / "deep.jsonl", [log_record("one"), DEEP, deep_object, log_record("two")])
    r = import_file(ws, path, fmt=fmt)
    assert (r.n_imported, r.n_quarantined) == (2, 2)
    assert _reasons(ws) == {2: "nested deeper than 100 levels", 3: "nested deeper than 100 levels"}


def test_nesting_is_measured_outside_strings(ws: Workspace, tmp_path: Path) -> None:
    brackets_in_text = log_record("[" * 500 + " {{{ " * 100)
    path = write_jsonl(tmp_path / "text.jsonl", [brackets_in_text, b"not json"])  # the careful path measures it
    assert import_file(ws, path).n_imported == 1


def _log_lines(n: int) -> list[bytes]:
    # Varied text, so that gzip cannot shrink the file to a few hundred bytes and a cut lands mid-stream.
    return [json.dumps(log_record(f"ticket {i} " + f"{i * 7919 % 104729:x}" * 40)).encode() for i in range(n)]


def _complete_lines(compressed: bytes) -> int:
    """Lines that a decoder reading as far as it can gets whole from ``compressed``."""
    out = zlib.decompressobj(31).decompress(compressed)
    return out.count(b"\n")


def test_a_truncated_gzip_imports_the_lines_before_the_cut(ws: Workspace, tmp_path: Path) -> None:
    full = gzip.compress(b"\n".join(_log_lines(400)) + b"\n")
    cut = full[: len(full) // 2]
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(cut)
    whole = _complete_lines(cut)
    assert 0 < whole < 400
    r = import_file(ws, path)
    assert r.n_imported == whole and r.n_quarantined == 1  # the line the cut went through
    assert r.warnings == [f"gzip stream ends early after line {whole}"]
    assert ws.query("SELECT line_no, reason FROM quarantine") == [
        (whole + 1, "unreadable rest of the file: gzip stream ends early")
    ]
    assert ws.scalar("SELECT max(source_line) FROM records") == whole
    assert json.loads(ws.scalar("SELECT warnings FROM import_batches")) == r.warnings
    with pytest.raises(StreamError, match="ends early"):
        count_lines(path)  # the fast path's count: it falls back instead of importing a silent part


def test_a_gzip_with_a_bad_checksum_imports_its_lines_and_says_so(ws: Workspace, tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"\n".join(_log_lines(50)) + b"\n"))
    data[-8] ^= 0xFF  # the CRC32 in the trailer: every line decodes, the check fails at the end
    path = tmp_path / "crc.jsonl.gz"
    path.write_bytes(bytes(data))
    r = import_file(ws, path)
    assert (r.n_imported, r.n_quarantined) == (50, 0)
    assert r.warnings == ["gzip stream is corrupt (incorrect data check) after line 50"]


def test_a_gzip_with_corrupted_bytes_imports_what_decodes(ws: Workspace, tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"\n".join(_log_lines(400)) + b"\n"))
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(bytes(data))
    r = import_file(ws, path)
    assert r.n_imported > 100  # the lines before the damage
    assert any(w.startswith("gzip stream is corrupt") for w in r.warnings)
    kept = ws.query("SELECT source_line, prompt FROM records ORDER BY source_line LIMIT 3")
    assert [p.split()[:2] for _, p in kept] == [["ticket", "0"], ["ticket", "1"], ["ticket", "2"]]


def test_a_gzip_that_is_corrupt_from_the_start_is_one_quarantine_entry(ws: Workspace, tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"\n".join(_log_lines(20))))
    data[3] = 0xFF  # reserved header flags: zlib refuses the stream before any data
    path = tmp_path / "head.jsonl.gz"
    path.write_bytes(bytes(data))
    r = import_file(ws, path)
    assert (r.n_imported, r.n_quarantined) == (0, 1)
    assert ws.query("SELECT line_no FROM quarantine") == [(0,)]
    assert "gzip stream is corrupt" in ws.scalar("SELECT reason FROM quarantine")


def test_a_json_array_file_imports_one_record_per_element(ws: Workspace, tmp_path: Path) -> None:
    no_messages = log_record("x")
    del no_messages["request"]["messages"]
    elements = [log_record("first"), 3, no_messages, log_record("fourth")]
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(elements, indent=2))  # pretty-printed, as exports usually are
    r = import_file(ws, path)
    assert (r.format, r.n_imported, r.n_quarantined) == ("log", 2, 2)
    assert r.options["container"] == "array"
    assert ws.query("SELECT source_line, prompt FROM records ORDER BY 1") == [(1, "first"), (4, "fourth")]
    assert ws.query("SELECT line_no, field, reason FROM quarantine ORDER BY 1") == [
        (2, None, "expected a JSON object, got UBIGINT"),
        (3, "request.messages", "missing field"),
    ]


def test_a_json_array_of_flat_objects_with_format_table(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "eval.json"
    path.write_text(json.dumps([{"question": f"q{i}", "answer": f"a{i}", "split": "dev"} for i in range(3)]))
    r = import_file(ws, path, fmt="table", mapping={"prompt": "question", "response": "answer"})
    assert r.n_imported == 3
    assert ws.query("SELECT prompt, response, metadata FROM records ORDER BY 1")[0] == ("q0", "a0", '{"split":"dev"}')


def test_a_large_json_array_is_streamed_in_order(ws: Workspace, tmp_path: Path) -> None:
    n = 25_000  # several DuckDB batches and importer chunks (arrays.ELEMENTS_PER_CHUNK)
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"prompt": f"p{i}", "response": "r"} for i in range(n)]))
    r = import_file(ws, path)
    assert (r.n_imported, r.n_quarantined) == (n, 0)
    assert ws.query("SELECT count(*) FROM records WHERE prompt <> 'p' || (source_line - 1)") == [(0,)]


def test_a_json_array_broken_in_the_middle_imports_the_elements_before(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    good = ",\n".join(json.dumps(log_record(f"p{i}")) for i in range(3))
    path.write_text(f"[\n{good},\n{{'python': True}},\n{json.dumps(log_record('after'))}\n]")
    r = import_file(ws, path)
    assert (r.n_imported, r.n_quarantined) == (3, 1)
    assert r.warnings == ["the JSON array is not valid JSON after element 3"]
    line, reason, raw = ws.query("SELECT line_no, reason, raw FROM quarantine")[0]
    assert (line, reason) == (4, "unreadable rest of the file: the JSON array is not valid JSON")
    assert raw.startswith("{'python': True}")


def test_a_jsonl_file_whose_lines_are_arrays_is_not_taken_for_an_array(ws: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "arrays.jsonl", [[1, 2], log_record("ok"), [3]])
    r = import_file(ws, path)
    assert (r.n_imported, r.n_quarantined) == (1, 2)
    assert "container" not in r.options


def test_format_table_on_a_csv_reads_the_columns_detection_reads(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,response\nhello,world\nfoo,bar\n")
    r = import_file(ws, path, fmt="table", mapping={"prompt": "prompt"})
    assert (r.format, r.n_imported) == ("csv", 2)
    assert ws.query("SELECT prompt, response FROM records ORDER BY 1") == [("foo", "bar"), ("hello", "world")]


REPRS = [
    b"{'request': {'messages': [{'role': 'user', 'content': 'hi'}]}, 'response': {'choices': [{'message': "
    b"{'content': 'yo'}}]}, 'metadata': {'ok': True, 'n': None, 't': (1, 2)}}",
    b"{'request': __import__('os').system('touch PWNED'), 'response': None}",
    b"{'request': {'messages': [{'role': 'user', 'content': 'x'}]}, 'tags': {1, 2}}",
    b"{'request': " + b"(" * 300 + b"1" + b")" * 300 + b"}",
    b"{'request': {'messages': [{'role': 'user', 'content': 'nan'}]}, 'score': float('nan')}",
]


def test_python_reprs_are_quarantined_by_default(ws: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "repr.jsonl", [log_record("json"), *REPRS])
    r = import_file(ws, path)
    assert (r.n_imported, r.n_quarantined) == (1, 5)
    assert all("Python dict repr" in why for why in _reasons(ws).values())


def test_accept_python_repr_converts_literals_only_and_marks_the_records(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_jsonl(tmp_path / "repr.jsonl", [log_record("json"), *REPRS])
    r = import_file(ws, path, accept_python_repr=True)
    assert (r.n_imported, r.n_quarantined) == (2, 4)
    meta = json.loads(ws.scalar("SELECT metadata FROM records WHERE source_line = 2"))
    assert meta == {"ok": True, "n": None, "t": [1, 2], "_converted_from": "python_repr"}
    assert ws.scalar("SELECT metadata FROM records WHERE source_line = 1") is not None
    converted = RecordFilter(where="metadata->>'_converted_from' = 'python_repr'")  # how a user finds them
    assert count_records(ws, converted) == 1
    why = _reasons(ws)
    assert why[3].startswith("not JSON: a Python repr with more than literals")  # never evaluated
    assert why[4].startswith("not JSON: a Python repr with values JSON cannot hold")  # a set
    assert why[5] == "nested deeper than 100 levels"
    assert why[6].startswith("not JSON: a Python repr with more than literals")  # float('nan') is a call
    assert not (tmp_path / "PWNED").exists()
    assert any("1 Python repr line(s) converted" in w for w in r.warnings)


def test_a_file_of_python_reprs_is_detected_when_accepted(ws: Workspace, tmp_path: Path) -> None:
    lines = [repr({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]})
             for i in range(3)]  # fmt: skip
    path = write_jsonl(tmp_path / "ft.jsonl", [line.encode() for line in lines])
    r = import_file(ws, path, accept_python_repr=True)
    assert (r.format, r.n_imported) == ("finetune", 3)


def test_preview_of_a_pretty_printed_json_array(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_text(json.dumps([log_record(f"p{i}") for i in range(30)], indent=2))
    rows = preview(path, limit=5)
    assert [(r["line_no"], r["prompt"], r["error"]) for r in rows] == [(i + 1, f"p{i}", None) for i in range(5)]
