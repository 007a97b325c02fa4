"""Bad input never crashes an import, never loses good lines, and is reported by file, line and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.importing import import_file
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl


def _reasons(ws: Workspace) -> dict[int, tuple[str | None, str]]:
    return {n: (f, r) for n, f, r in ws.query("SELECT line_no, field, reason FROM quarantine")}


def test_each_bad_line_is_quarantined_and_good_lines_import(ws: Workspace, tmp_path: Path) -> None:
    no_messages = log_record("x")
    del no_messages["request"]["messages"]
    wrong_type = log_record("y")
    wrong_type["request"]["messages"] = "hello"
    no_response = log_record("z")
    del no_response["response"]
    content_not_str = log_record("w")
    content_not_str["response"]["choices"][0]["message"]["content"] = 42
    failed = log_record("v")
    failed["response"] = {"error": {"message": "context length exceeded"}}
    lines = [
        log_record("good 1"),                                  # 1
        b"this is not json",                                   # 2
        b"[1, 2, 3]",                                          # 3
        no_messages,                                           # 4
        wrong_type,                                            # 5
        no_response,                                           # 6
        b"{'request': {'messages': []}, 'ok': True}",         # 7 python repr
        b'{"request": "\xff\xfe broken utf-8"}',              # 8
        content_not_str,                                       # 9
        failed,                                                # 10
        b"",                                                   # 11 blank: skipped, not quarantined
        log_record("good 2"),                                  # 12
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    r = import_file(ws, path)
    assert r.n_imported == 2
    assert ws.query("SELECT source_line, prompt FROM records ORDER BY 1") == [(1, "good 1"), (12, "good 2")]
    why = _reasons(ws)
    assert why[2] == (None, "not valid JSON")
    assert why[3] == (None, "expected a JSON object, got ARRAY")
    assert why[4] == ("request.messages", "missing field")
    assert why[5][0] == "request.messages" and "expected an array" in why[5][1]
    assert why[6] == ("response", "missing field")
    assert "Python dict repr" in why[7][1]
    assert why[8] == (None, "not valid UTF-8 text")
    assert why[9][0] == "response.choices[0].message.content" and "got NUMBER" in why[9][1]
    assert why[10] == ("response.error", "the teacher call failed: context length exceeded")
    assert 11 not in why and r.n_quarantined == 9
    assert any("blank" in w for w in r.warnings)
    raw8 = ws.scalar("SELECT raw FROM quarantine WHERE line_no = 8")
    assert "\\xFF" in raw8  # undecodable bytes are shown escaped, not lost


def test_bom_is_stripped_with_a_warning(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(log_record("first")).encode() + b"\n" + json.dumps(log_record("b")).encode()
    )
    r = import_file(ws, path)
    assert r.n_imported == 2 and r.n_quarantined == 0
    assert any("byte order mark" in w for w in r.warnings)
    assert ws.scalar("SELECT prompt FROM records WHERE source_line = 1") == "first"


def test_huge_line_is_quarantined(ws: Workspace, tmp_path: Path) -> None:
    big = log_record("x" * (10 * 1024 * 1024))
    path = write_jsonl(tmp_path / "big.jsonl", [log_record("small"), big])
    r = import_file(ws, path)
    assert r.n_imported == 1
    reason = ws.scalar("SELECT reason FROM quarantine WHERE line_no = 2")
    assert reason == "line longer than the 8 MB limit"  # the size is in raw_bytes, so reasons group
    assert ws.scalar("SELECT raw_bytes FROM quarantine") > 10 * 1024 * 1024


def test_huge_line_imports_when_allowed(ws: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "big.jsonl", [log_record("x" * (10 * 1024 * 1024))])
    assert import_file(ws, path, max_line_mb=20).n_imported == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "file is empty"), (b"\x00\x01\x02\x89PNG\x00\x00" * 100, "binary file")],
)
def test_empty_and_binary_files(ws: Workspace, tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    r = import_file(ws, path)
    assert r.n_imported == 0 and r.n_quarantined == 1
    assert ws.query("SELECT line_no FROM quarantine") == [(0,)]
    assert reason in ws.scalar("SELECT reason FROM quarantine")


def test_bad_file_never_loses_existing_data(ws: Workspace, tmp_path: Path) -> None:
    import_file(ws, write_jsonl(tmp_path / "a.jsonl", [log_record("keep me")]))
    import_file(ws, write_jsonl(tmp_path / "b.jsonl", [b"garbage", b"{broken"]))
    assert ws.query("SELECT prompt FROM records") == [("keep me",)]
