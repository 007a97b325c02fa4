"""JSON array files (``[{...}, {...}]``, the usual shape of eval and export dumps): one record per element.

Elements are numbered from 1 and take the place of line numbers (``source_line``, quarantine ``line_no``), so the
careful path classifies and transforms them exactly like lines. DuckDB streams the elements out of the array
(``read_json_objects(format='array')``: memory stays bounded whatever the file's size) as their source text. When
the array is not valid JSON, DuckDB reads nothing, so Python's decoder reads the elements up to the break instead
and the rest of the file is reported in one quarantine entry.
"""

from __future__ import annotations

import codecs
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from curation.importing.lines import StreamEnd
from curation.importing.nesting import deep_lines, open_brackets
from curation.importing.streams import is_gzip, open_binary
from curation.progress import check_cancel

ELEMENTS_PER_CHUNK = 10_000
READER_MEMORY = "512MB"  # DuckDB's cap while streaming an array, on its own connection
READ_BYTES = 4 * 1024 * 1024
_WS = " \t\r\n"


def looks_like_array(head: bytes) -> bool:
    """Whether a file starting with ``head`` is one JSON array, not JSON lines (whose lines might be arrays).

    A file of one line that starts with ``[`` is an array; with more lines, it is one when its first line leaves a
    bracket open (a pretty-printed array), and JSON lines when the first line is a whole value.
    """
    text = head.lstrip()
    if not text.startswith(b"["):
        return False
    first, newline, rest = text.partition(b"\n")
    return not newline or not rest.strip() or open_brackets(first) > 0


def sniff_elements(head: bytes, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` object elements of the array that ``head`` starts (elements cut by its end are left out)."""
    text = head.decode("utf-8", errors="replace").lstrip()
    decoder = json.JSONDecoder()
    objs: list[dict[str, Any]] = []
    pos = 1
    while len(objs) < limit:
        pos = _skip_ws(text, pos)
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            break
        if isinstance(obj, dict):
            objs.append(obj)
        pos = _skip_ws(text, pos)
        if pos >= len(text) or text[pos] != ",":
            break
        pos += 1
    return objs


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def iter_element_chunks(
    path: Path, cancel: threading.Event | None, end: StreamEnd, max_bytes: int
) -> Iterator[tuple[pa.Table, int]]:
    """Yield (Arrow table of line_no + raw + deep, bytes so far) per chunk of elements, like ``iter_line_chunks``.

    ``end`` says where a broken array stopped: ``problem``, the last element read whole
    and the start of the text that could not be read.
    """
    done = 0
    consumed = 0
    try:
        for raw in _duckdb_elements(path):
            check_cancel(cancel)
            consumed += raw.nbytes
            yield _numbered(raw, done + 1), consumed
            done += len(raw)
        end.last_line = done
        return
    except (duckdb.Error, pa.ArrowException, OSError):  # errors in a streamed batch come through Arrow
        pass  # not valid JSON somewhere: read the elements up to there in Python (after those already handed out)
    pending: list[bytes] = []
    seen = 0
    for element in _python_elements(path, end, max_bytes):
        seen += 1
        if seen <= done:
            continue
        pending.append(element)
        consumed += len(element)
        if len(pending) >= ELEMENTS_PER_CHUNK:
            check_cancel(cancel)
            yield _numbered(pa.array(pending, pa.large_binary()), done + 1), consumed
            done += len(pending)
            pending = []
    if pending:
        yield _numbered(pa.array(pending, pa.large_binary()), done + 1), consumed
        done += len(pending)
    end.last_line = done


def _duckdb_elements(path: Path) -> Iterator[pa.Array]:
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{READER_MEMORY}'")
        compression = "gzip" if is_gzip(path) else "none"
        reader = con.sql(
            "SELECT encode(CAST(json AS VARCHAR)) AS raw FROM read_json_objects(?, format='array', compression=?)",
            params=[str(path), compression],
        ).to_arrow_reader(ELEMENTS_PER_CHUNK)
        for batch in reader:
            yield batch.column(0).cast(pa.large_binary())
    finally:
        con.close()


def _python_elements(path: Path, end: StreamEnd, max_bytes: int) -> Iterator[bytes]:
    """Each element's source text, up to the first place the array is not valid JSON (then ``end`` says why)."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    with open_binary(path) as f:
        text, pos, eof = "", 0, False

        def ws_or_more() -> None:  # move pos past whitespace, reading on as long as there is only whitespace
            nonlocal text, pos, eof
            while (pos := _skip_ws(text, pos)) >= len(text) and not eof:
                read_more()

        def read_more() -> None:
            nonlocal text, pos, eof
            chunk = f.read(READ_BYTES)
            eof = not chunk
            text = text[pos:] + text_decoder.decode(chunk, final=eof)  # drop what was read: the buffer stays small
            pos = 0

        def stop(problem: str) -> None:
            end.problem, end.partial = problem, text[pos : pos + 2000].encode("utf-8", "surrogateescape")

        read_more()
        if text.startswith("\ufeff"):
            pos = 1
        ws_or_more()
        if text[pos : pos + 1] != "[":
            return stop("not a JSON array")
        pos += 1
        ws_or_more()
        if text[pos : pos + 1] == "]":  # an empty array
            pos += 1
        else:
            while True:
                ws_or_more()
                try:
                    _, after = decoder.raw_decode(text, pos)
                except RecursionError:
                    return stop("the JSON array nests too deep to read on")
                except ValueError:
                    if not eof and len(text) - pos <= 4 * max_bytes:
                        read_more()  # the element may go on in the next read
                        continue
                    if not eof:
                        return stop(f"the JSON array has an element over {4 * max_bytes / 2**20:g} MB")
                    return stop("the JSON array is not valid JSON" if len(text) > pos else "the JSON array ends early")
                yield text[pos:after].encode("utf-8", "surrogateescape")
                pos = after
                ws_or_more()
                if text[pos : pos + 1] == "]":
                    pos += 1
                    break
                if text[pos : pos + 1] != ",":
                    return stop("the JSON array is not valid JSON" if len(text) > pos else "the JSON array ends early")
                pos += 1
        ws_or_more()
        if pos < len(text):
            stop("more data follows the JSON array")


def _numbered(raw: pa.Array, first: int) -> pa.Table:
    offsets = np.frombuffer(raw.buffers()[1], np.int64)[raw.offset : raw.offset + len(raw) + 1]
    data = np.frombuffer(raw.buffers()[2], np.uint8) if raw.buffers()[2] is not None else np.zeros(0, np.uint8)
    deep = deep_lines(data, offsets[:-1], offsets[1:])
    line_no = pa.array(np.arange(first, first + len(raw), dtype=np.int64))
    return pa.table({"line_no": line_no, "raw": raw, "deep": deep})
