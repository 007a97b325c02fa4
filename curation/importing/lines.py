"""Reading JSON-lines files as numbered lines, in bounded chunks, for the careful import path.

The file is split on newlines with numpy (no Python loop per line) and handed to DuckDB as an Arrow table
of (line_no, raw bytes), so invalid UTF-8, BOMs, Python reprs and huge lines can each be named by line.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from curation.importing.nesting import MAX_DEPTH, deep_lines
from curation.importing.pyrepr import REPR_REASON
from curation.importing.sql import sql_str
from curation.importing.streams import StreamError, is_gzip, open_binary, stream_problem
from curation.progress import check_cancel

CHUNK_BYTES = 32 * 1024 * 1024
# Counting reads small blocks into one buffer: a block that stays in the CPU cache is counted in half the time
# of a 32 MB one (0.20 against 0.43 CPU-s for 1.3 GB), CPU that a fast import running beside it needs.
COUNT_BYTES = 256 * 1024

# Classify each staged line: decode, strip a BOM and a trailing CR, then say what (if anything) is wrong with it.
CLASSIFY_SQL = """
SELECT line_no, nbytes, txt, had_bom,
    CASE
        WHEN nbytes > {max_bytes} THEN 'line longer than the {max_mb} MB limit'
        WHEN txt IS NULL THEN 'not valid UTF-8 text'
        WHEN trim(txt) = '' THEN 'blank'
        WHEN deep THEN 'nested deeper than {max_depth} levels'
        WHEN NOT json_valid(txt) THEN CASE
            WHEN regexp_matches(txt, '^\\s*[\\[{{]\\s*''') OR regexp_matches(txt, ':\\s*(True|False|None)\\b')
                THEN {repr_reason}
            ELSE 'not valid JSON' END
        WHEN json_type(txt) <> 'OBJECT' THEN 'expected a JSON object, got ' || json_type(txt)
    END AS line_err
FROM (
    SELECT line_no, nbytes, had_bom, deep,
        CASE WHEN nbytes > {max_bytes} THEN NULL ELSE rtrim(CASE WHEN had_bom THEN substr(t, 2) ELSE t END, chr(13)) END
            AS txt
    FROM (
        SELECT line_no, octet_length(raw) AS nbytes, t, starts_with(coalesce(t, ''), chr(65279)) AS had_bom, deep
        FROM (SELECT line_no, raw, deep, try(decode(raw)) AS t FROM {source})
    )
)
"""


def stage_lines(cur: duckdb.DuckDBPyConnection, table: pa.Table, max_bytes: int) -> None:
    """Classify a chunk (line_no, raw, deep) into the temp table ``_lines`` (``CLASSIFY_SQL``)."""
    cur.register("_chunk", table)
    sql = CLASSIFY_SQL.format(
        source="_chunk", max_bytes=max_bytes, max_mb=f"{max_bytes / 1048576:g}", max_depth=MAX_DEPTH,
        repr_reason=sql_str(REPR_REASON),
    )  # fmt: skip
    cur.execute("CREATE OR REPLACE TEMP TABLE _lines AS " + sql)
    cur.unregister("_chunk")


def quarantine_lines(cur: duckdb.DuckDBPyConnection, batch_id: int, source: str) -> int:
    """Quarantine the staged lines that are not JSON objects (``_lines``, raw bytes in ``_chunk_raw``); how many."""
    return cur.execute(
        f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
        SELECT {batch_id}, {sql_str(source)}, l.line_no, NULL, l.line_err,
            {raw_preview_sql("c.raw", "l.txt")}, l.nbytes
        FROM _lines l JOIN _chunk_raw c USING (line_no)
        WHERE l.line_err IS NOT NULL AND l.line_err <> 'blank'"""
    ).fetchall()[0][0]


def raw_preview_sql(raw: str, txt: str) -> str:
    """The first 2,000 characters of a line for quarantine: the text, or an escaped form of undecodable bytes."""
    return f"left(coalesce({txt}, CAST({raw}[1:2000] AS VARCHAR)), 2000)"


@dataclass
class StreamEnd:
    """How a file's lines ended: whole, or where a broken gzip stream stopped (filled in by ``iter_line_chunks``)."""

    problem: str | None = None  # why the stream stopped early, None when it was read to its end
    last_line: int = 0  # the number of the last line read whole
    partial: bytes = b""  # the start of the line the stream stopped in (line ``last_line + 1``), if any


def iter_line_chunks(
    path: Path, cancel: threading.Event | None = None, chunk_bytes: int = CHUNK_BYTES, end: StreamEnd | None = None
) -> Iterator[tuple[pa.Table, int]]:
    """Yield (Arrow table of line_no + raw + deep, bytes consumed so far) for each chunk of whole lines.

    A gzip stream that breaks (truncated, corrupt) ends the lines early: the unfinished last line is not yielded,
    and ``end`` (when given) says what happened.
    """
    end = end if end is not None else StreamEnd()
    next_line = 1
    consumed = 0
    carry = b""
    with open_binary(path) as f:
        while True:
            check_cancel(cancel)
            chunk = f.read(chunk_bytes)
            data = carry + chunk if carry else chunk
            if chunk:
                cut = data.rfind(b"\n")
                if cut < 0:  # one line longer than the chunk: keep reading
                    carry = data
                    continue
                carry, data = data[cut + 1 :], data[:cut]
            else:
                carry = b""
                end.problem = stream_problem(f)
                if end.problem is not None:  # the stream stopped inside this line: it is not a whole line
                    end.partial, data = data, b""
                if not data:
                    break
            consumed += len(data) + (1 if chunk else 0)
            table = _lines_table(data, next_line)
            next_line += table.num_rows
            yield table, consumed
            if not chunk:
                break
    end.last_line = next_line - 1


def _lines_table(data: bytes, first_line: int) -> pa.Table:
    buf = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(buf == 10)
    n = len(nl) + 1
    # Offsets into data: line i spans [start_i, end_i); we drop the "\n" by building (start, end) pairs via take.
    starts = np.empty(n, np.int64)
    starts[0] = 0
    starts[1:] = nl + 1
    ends = np.empty(n, np.int64)
    ends[:-1] = nl
    ends[-1] = len(data)
    # Binary array whose offsets skip the newline bytes: lengths = ends - starts, data compacted by removing "\n".
    keep = np.ones(len(buf), bool)
    keep[nl] = False
    compact = buf[keep]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(ends - starts, out=offsets[1:])
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(compact)])
    line_no = pa.array(np.arange(first_line, first_line + n, dtype=np.int64))
    return pa.table({"line_no": line_no, "raw": raw, "deep": deep_lines(buf, starts, ends)})


def count_lines(path: Path) -> int:
    """Number of lines (a final line without a newline counts; a trailing newline does not add one).

    Raises ``StreamError`` when a gzip stream is broken: its lines can only be counted up to the break.

    Plain files are read into one small reused buffer (``COUNT_BYTES``) and counted with numpy: fresh 32 MB
    chunks spent most of their time faulting in new pages (1.5 s of CPU for 1.3 GB against 0.2 s), CPU an import
    running beside it on two cores needs. (A memory map kills the process when the file is truncated under it.)
    """
    n = 0
    last = 10
    if is_gzip(path):
        with open_binary(path) as f:
            while chunk := f.read(CHUNK_BYTES):
                n += chunk.count(b"\n")
                last = chunk[-1]
            if problem := stream_problem(f):
                raise StreamError(problem)
    else:
        buf = bytearray(COUNT_BYTES)
        with open(path, "rb", buffering=0) as f:
            while k := f.readinto(buf):
                data = np.frombuffer(buf, dtype=np.uint8, count=k)
                n += int(np.count_nonzero(data == 10))
                last = int(data[-1])
                del data  # release the view so the buffer can be refilled
    return n + (0 if last == 10 else 1)
