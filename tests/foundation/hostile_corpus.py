"""A corpus of hostile inputs for `distill import`, written into a folder by the tests (no data files committed).

Each ``Case`` writes its file(s) and says what a user must see: the exit code, a message, how many records the
import adds, quarantines and attaches, and how many earlier records it may change (only attached answers do). Cases
run in order against one workspace, so a case can build on an earlier one (a Batch output after its input).

More rows fit the same shape: a fault of the workspace rather than the file (a ``-w`` that is not a workspace, a
truncated workspace, a full disk) sets ``workspace`` to make its own ``-w`` target, and ``env`` for the process;
``imported=None`` says no batch may be made. For example::

    Case("-w is a JSON-lines file", _jsonl("w", _lines("w", 1)),
         Expect(1, "is not a Distill workspace", imported=None),
         workspace=lambda folder, shared: write_jsonl(folder / "b.jsonl", _lines("b", 1)))
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import log_record, write_jsonl


@dataclass(frozen=True)
class Expect:
    """What a user sees after one `distill import`."""

    exit_code: int
    message: str  # a part of the output (stdout and stderr) that must be there
    imported: int | None = None  # records added by the batch; None: no batch is made (a refusal)
    quarantined: int | None = None
    attached: int = 0  # answers that filled earlier records
    changes_earlier: int = 0  # earlier records whose answer may change (the attached ones); the rest stay as they were


@dataclass(frozen=True)
class Case:
    """One input and what importing it must do."""

    name: str
    write: Callable[[Path], list[str]]  # writes the input into an empty folder; returns the arguments after `import`
    expect: Expect
    # (the case's folder, the shared workspace) -> the `-w` path to use; None: the shared workspace
    workspace: Callable[[Path, Path], Path] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _lines(name: str, n: int) -> list[dict[str, Any]]:
    """Log records whose prompts are unique to the case (so no case's records are another's duplicates)."""
    return [log_record(f"{name} ticket {i} " + f"{i * 7919 % 104729:x}" * 30) for i in range(n)]


def _jsonl(name: str, items: list[Any], suffix: str = ".jsonl") -> Callable[[Path], list[str]]:
    def write(folder: Path) -> list[str]:
        return [str(write_jsonl(folder / f"{name}{suffix}", items))]

    return write


def _raw(filename: str, data: bytes, *args: str) -> Callable[[Path], list[str]]:
    def write(folder: Path) -> list[str]:
        (folder / filename).write_bytes(data)
        return [str(folder / filename), *args]

    return write


def _ndjson(items: list[Any], sep: bytes = b"\n") -> bytes:
    return sep.join(json.dumps(i).encode() for i in items) + sep


def _truncated_gzip() -> tuple[bytes, int]:
    """A gzip cut in half, and how many whole lines decode from it."""
    import zlib

    full = gzip.compress(_ndjson(_lines("truncated-gzip", 300)), mtime=0)
    cut = full[: len(full) // 2]
    return cut, zlib.decompressobj(31).decompress(cut).count(b"\n")


def _bad_crc_gzip() -> bytes:
    data = bytearray(gzip.compress(_ndjson(_lines("bad-crc-gzip", 40)), mtime=0))
    data[-8] ^= 0xFF  # the trailer's CRC32: every line decodes, the check fails at the end
    return bytes(data)


def _bad_header_gzip() -> bytes:
    data = bytearray(gzip.compress(_ndjson(_lines("bad-header-gzip", 5)), mtime=0))
    data[3] = 0xFF  # reserved header flags: nothing decodes
    return bytes(data)


def _batch_input(name: str, n: int) -> list[dict[str, Any]]:
    return [{"custom_id": f"{name}-{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": f"{name} q{i}"}]}}
            for i in range(n)]  # fmt: skip


def _batch_output(name: str, ids: range, model: Callable[[int], str] = lambda i: "gpt-4o-2024-08-06") -> list[Any]:
    return [{"id": f"req-{i}", "custom_id": f"{name}-{i}", "error": None, "response": {"status_code": 200, "body": {
        "model": model(i), "choices": [{"index": 0, "message": {"role": "assistant", "content": f"a{i}"},
        "finish_reason": "stop"}]}}} for i in ids]  # fmt: skip


def _batch_pair(name: str, n_in: int, answered: range, **kw: Any) -> Callable[[Path], list[str]]:
    def write(folder: Path) -> list[str]:
        write_jsonl(folder / "input.jsonl", _batch_input(name, n_in))
        return [str(write_jsonl(folder / "output.jsonl", _batch_output(name, answered, **kw)))]

    return write


def _repr(obj: dict[str, Any]) -> bytes:
    return repr(obj).encode()


def _deep_file() -> bytes:
    good = _lines("deep-nesting", 3)
    deep = b"[" * 10_000 + b"]" * 10_000
    return _ndjson(good[:1]) + deep + b"\n" + _ndjson(good[1:])


def _many_messages() -> list[Any]:
    rec = log_record("a line with 100k messages: the last one")
    rec["request"]["messages"] = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(100_000)
    ] + [{"role": "user", "content": "a line with 100k messages: the last one"}]
    return [rec, *_lines("many-messages", 1)]


def _array() -> bytes:
    elements: list[Any] = [*_lines("json-array", 3), 42]
    return json.dumps(elements, indent=2).encode()


def _broken_array() -> bytes:
    good = ",\n".join(json.dumps(r) for r in _lines("broken-array", 2))
    return f"[\n{good},\n{{'not': 'json'}},\n{json.dumps(_lines('broken-array-after', 1)[0])}\n]".encode()


def cases() -> list[Case]:
    """Every hostile input, in the order they run against one workspace."""
    truncated, whole = _truncated_gzip()
    reprs = [_repr(r) for r in _lines("python-repr", 2)]
    bom = b"\xef\xbb\xbf" + _ndjson(_lines("bom", 3))
    return [
        Case("bom", _raw("bom.jsonl", bom), Expect(0, "byte order mark", 3, 0)),
        Case("crlf", _raw("crlf.jsonl", _ndjson(_lines("crlf", 3), b"\r\n")), Expect(0, "3 imported", 3, 0)),
        Case("invalid utf-8", _jsonl("utf8", [*_lines("utf8", 2), b'{"request": "\xff\xfe"}']),
             Expect(0, "not valid UTF-8 text", 2, 1)),
        Case("10 MB line", _jsonl("ten", [log_record("ten-mb " + "x" * (10 * 2**20)), *_lines("ten-mb", 1)]),
             Expect(0, "line longer than the 8 MB limit", 1, 1)),
        Case("python repr", _jsonl("repr", [*reprs, *_lines("python-repr-json", 1)]),
             Expect(0, "Python dict repr", 1, 2)),
        Case("python repr accepted", lambda d: [*_jsonl("repr2", [_repr(r) for r in _lines("repr-ok", 2)])(d),
                                                "--accept-python-repr"],
             Expect(0, "2 Python repr line(s) converted", 2, 0)),
        Case("binary", _raw("image.jsonl", b"\x89PNG\x00\x00\x01\x02" * 200), Expect(1, "binary file", 0, 1)),
        Case("empty", _raw("empty.jsonl", b""), Expect(1, "file is empty", 0, 1)),
        Case("mixed good and bad", _jsonl("mixed", [*_lines("mixed", 2), b"not json", b"[1, 2]", {"x": 1}]),
             Expect(0, "3 quarantined", 2, 3)),
        Case("all bad", _jsonl("allbad", [b"nope", b"{broken"]), Expect(1, "0 imported, 2 quarantined", 0, 2)),
        Case("unmatched Batch ids", _batch_pair("unmatched", 1000, range(10)),
             Expect(0, "no result for this custom_id in the Batch output", 10, 990)),
        Case("broken CSV quotes", _raw("tickets.csv", b'prompt,response\nhello,world\n"open,quote\n"a","b","c"\nx\nfoo,bar\n'),
             Expect(0, "TOO MANY COLUMNS", 3, 2)),  # DuckDB reads the unclosed quote as part of its value
        Case("truncated gzip", _raw("t.jsonl.gz", truncated),
             Expect(0, f"gzip stream ends early after line {whole}", whole, 1)),
        Case("gzip with a bad checksum", _raw("crc.jsonl.gz", _bad_crc_gzip()),
             Expect(0, "gzip stream is corrupt (incorrect data check) after line 40", 40, 0)),
        Case("gzip corrupt from the start", _raw("head.jsonl.gz", _bad_header_gzip()),
             Expect(1, "gzip stream is corrupt", 0, 1)),
        Case("deep nesting", _raw("deep.jsonl", _deep_file()), Expect(0, "nested deeper than 100 levels", 3, 1)),
        Case("deep nesting, --format log", lambda d: [*_raw("deep2.jsonl", _deep_file().replace(
            b"deep-nesting", b"deep-nesting-log"))(d), "--format", "log"],
             Expect(0, "nested deeper than 100 levels", 3, 1)),
        Case("a line with 100k messages", _jsonl("many", _many_messages()), Expect(0, "2 imported", 2, 0)),
        Case("JSON array", _raw("dump.json", _array()), Expect(0, "expected a JSON object, got UBIGINT", 3, 1)),
        Case("JSON array broken in the middle", _raw("broken.json", _broken_array()),
             Expect(0, "the JSON array is not valid JSON after element 2", 2, 1)),
        Case("CSV with --format table", _raw("t.csv", b"prompt,response\ncsv-q1,a\ncsv-q2,b\n", "--format", "table",
                                             "--prompt-col", "prompt"), Expect(0, "2 imported", 2, 0)),
        Case("Batch output from another model", _batch_pair("model", 3, range(3), model=lambda i: "gpt-4o-mini"),
             Expect(0, "came from another model than requested (gpt-4o -> gpt-4o-mini: 3)", 3, 0)),
        Case("Batch input alone", _jsonl("input", _batch_input("attach", 4)), Expect(0, "4 imported", 4, 0)),
        # the output beside a copy of the input the case above imported: its answers fill those prompts
        Case("its Batch output, imported after it", _batch_pair("attach", 4, range(3)),
             Expect(0, "3 answers attached to prompts already here", 0, 1, attached=3, changes_earlier=3)),
    ]  # fmt: skip
