"""``import_file``: bring one file into the workspace as an import batch, all or nothing.

Clean JSON-lines files take the fast path (one DuckDB ``read_json`` pass, kept only if every line became a
record; content already in the workspace is then dropped). Anything else (bad lines, blank lines, a BOM, Batch
joins) takes the careful path: numbered lines in bounded chunks, each bad line quarantined with its line number
and reason, good lines imported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from curation.errors import Cancelled, UserError
from curation.importing import sql as S
from curation.importing.detect import FORMATS, Detection, detect_format
from curation.importing.lines import count_lines, open_binary
from curation.progress import ProgressFn, report
from curation.records import CONTENT_HASH_SQL, LOGPROB_LIST_SQL, finish_batch, new_batch
from curation.workspace import Workspace

MAX_LINE_MB = 8
IMPORT_MEMORY = "1536MB"  # DuckDB memory cap during a fast import, so a huge file spills instead of growing
RECORD_INSERT_COLUMNS = (
    "batch_id, source_file, source_line, messages, prompt, response, response_logprobs, teacher_model, "
    "finish_reason, slice, reference, metadata, request_params, prompt_tokens, completion_tokens, latency_ms, "
    "logged_at, content_hash, mean_logprob, min_logprob"
)


@dataclass
class ImportResult:
    """What one import did."""

    batch_id: int | None
    source_file: str
    format: str
    n_lines: int = 0
    n_imported: int = 0
    n_duplicates: int = 0
    n_quarantined: int = 0
    warnings: list[str] = field(default_factory=list)
    quarantine_sample: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ImportPlan:
    path: Path
    fmt: str
    slice_field: str | None
    reference_field: str | None
    mapping: dict[str, str]
    batch_input: Path | None
    system_prompt: str | None
    max_line_bytes: int
    batch_id: int | None = None  # set when the fast path rolled back: the careful path reuses its batch number

    def options(self) -> dict[str, Any]:
        return {
            "slice_field": self.slice_field,
            "reference_field": self.reference_field,
            "mapping": self.mapping or None,
            "batch_input": str(self.batch_input) if self.batch_input else None,
        }


class _FallBack(Exception):
    """The fast path saw something it can't account for line by line; redo carefully."""


def import_file(
    ws: Workspace,
    path: str | Path,
    *,
    fmt: str | None = None,
    slice_field: str | None = None,
    reference_field: str | None = None,
    mapping: dict[str, str] | None = None,
    batch_input: str | Path | None = None,
    system_prompt: str | None = None,
    max_line_mb: float = MAX_LINE_MB,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ImportResult:
    """Import ``path`` as one batch. Bad lines go to quarantine; raises UserError only for unusable requests."""
    started = time.monotonic()
    p = Path(path).resolve()
    det = detect_format(p)
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    plan = ImportPlan(
        path=p,
        fmt=fmt or det.format,
        slice_field=slice_field or det.slice_field,
        reference_field=reference_field or det.reference_field,
        mapping={**(det.mapping or {}), **(mapping or {})},
        batch_input=Path(batch_input).resolve() if batch_input else det.batch_input,
        system_prompt=system_prompt,
        max_line_bytes=int(max_line_mb * 1024 * 1024),
    )
    if plan.batch_input is not None and not plan.batch_input.exists():
        raise UserError(f"batch input file {plan.batch_input} does not exist")
    result = _run(ws, plan, det, progress, cancel)
    result.seconds = time.monotonic() - started
    return result


def _run(ws: Workspace, plan: ImportPlan, det: Detection, progress: ProgressFn | None, cancel: threading.Event | None):
    if det.problem:
        return _whole_file_problem(ws, plan, det.problem)
    # A byte order mark (a file saved by a Windows editor) goes the careful way, which strips and reports it.
    if plan.fmt in ("log", "finetune") and not _starts_with_bom(plan.path):
        try:
            return _fast(ws, plan, progress, cancel)
        except _FallBack:
            pass
    from curation.importing.careful import import_careful, import_table_file

    if plan.fmt in ("csv", "parquet"):
        return import_table_file(ws, plan, progress, cancel)
    return import_careful(ws, plan, progress, cancel)


def _starts_with_bom(path: Path) -> bool:
    with open_binary(path) as f:
        return f.read(3) == b"\xef\xbb\xbf"


def _whole_file_problem(ws: Workspace, plan: ImportPlan, problem: str) -> ImportResult:
    with ws.transaction() as cur:
        batch_id = new_batch(cur, str(plan.path), plan.fmt, plan.options())
        cur.execute(
            "INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes) "
            "VALUES (?, ?, 0, NULL, ?, NULL, ?)",
            [batch_id, str(plan.path), problem, plan.path.stat().st_size],
        )
        finish_batch(cur, batch_id, n_lines=0, n_imported=0, n_duplicates=0, n_quarantined=1)
    return ImportResult(
        batch_id, str(plan.path), plan.fmt, n_quarantined=1,
        quarantine_sample=[{"line_no": 0, "field": None, "reason": problem}], options=plan.options(),
    )  # fmt: skip


def transform_for(
    plan: ImportPlan,
    columns: tuple[str, ...],
    typed_response: bool = False,
    text_keys: frozenset[str] = frozenset(),
) -> str:
    if plan.fmt in ("log", "batch", "batch_input"):
        return S.log_transform(
            columns,
            plan.slice_field,
            plan.reference_field,
            plan.fmt != "batch_input",
            typed_response=typed_response,
            text_keys=text_keys,
        )
    if plan.fmt == "finetune":
        return S.finetune_transform(columns, plan.slice_field, plan.reference_field)
    raise AssertionError(plan.fmt)


def keys_for(plan: ImportPlan) -> tuple[str, ...]:
    base = S.FINETUNE_KEYS if plan.fmt == "finetune" else S.LOG_KEYS
    return S.top_level_keys(base, plan.slice_field, plan.reference_field)


def _records_select(parsed: str, batch_id: int, source: str, line_sql: str) -> str:
    """The record columns (``RECORD_INSERT_COLUMNS`` order) of the good rows of ``parsed``; ``h`` is the hash."""
    h = CONTENT_HASH_SQL.format(m="messages", r="response", md="metadata")
    return f"""
    SELECT {batch_id}, {S.sql_str(source)}, {line_sql}, messages, prompt, response, response_logprobs, teacher_model,
        finish_reason, slice, reference, metadata, request_params, prompt_tokens, completion_tokens, latency_ms,
        logged_at, h, list_avg(lps), list_min(lps)
    FROM (SELECT *, {h} AS h, {LOGPROB_LIST_SQL} AS lps FROM ({parsed}) WHERE err_reason IS NULL)
    """


def insert_records_sql(parsed: str, batch_id: int, source: str) -> str:
    """INSERT of the good rows of ``parsed``, skipping content already imported by an earlier batch.

    Duplicates inside one file are kept (production traffic repeats; exact dedupe is a curation step), so the
    fast and the careful path agree whatever the chunking.
    """
    return f"""
    INSERT INTO records ({RECORD_INSERT_COLUMNS}) {_records_select(parsed, batch_id, source, "line_no")}
    WHERE h NOT IN (SELECT content_hash FROM records WHERE batch_id <> {batch_id})
    """


class _Watch:
    """Poll a running statement's progress for the caller, and interrupt it when cancel is set."""

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        detail: str = "",
    ) -> None:
        self.cur, self.progress, self.cancel, self.detail = cur, progress, cancel, detail
        self.stop = threading.Event()
        self.cancelled = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            if self.cancel is not None and self.cancel.is_set():
                self.cancelled = True
                self.cur.interrupt()
                return
            if self.progress is not None:
                pct = self.cur.query_progress()
                if pct >= 0:
                    try:
                        report(self.progress, None, "importing", pct, 100.0, self.detail)
                    except Exception:  # progress consumers must never break the import
                        pass

    def __enter__(self) -> _Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _fast(ws: Workspace, plan: ImportPlan, progress: ProgressFn | None, cancel: threading.Event | None) -> ImportResult:
    """One parallel pass over a clean file; raises _FallBack when any line needs the careful path.

    Line numbers come from storage order, not ``row_number()``: a window (or WITH ORDINALITY) over read_json
    runs the whole pipeline on one thread. So the rows go straight into ``records`` with one parallel,
    order-preserving INSERT, committed under a batch marked 'importing'; a second, short transaction then numbers
    them from their row ids (``_number_rows``), drops rows whose content an earlier batch holds, and marks the batch
    done. Numbering inside the first transaction would be one commit, but DuckDB then rewrites every row group the
    transaction had already written (4 s of 9 at 1M records). A process killed between the two leaves an
    'importing' batch, which the next open discards.
    """
    keys = keys_for(plan)
    # A typed response parses once (see sql.RESPONSE_STRUCT), and timestamps and latency are read as text, unless
    # the user's field paths read inside them (those take JSON paths).
    user_heads = {(f or "").split(".")[0] for f in (plan.slice_field, plan.reference_field)}
    typed = plan.fmt == "log" and "response" not in user_heads
    text_keys = frozenset(k for k in S.TEXT_LOG_KEYS if plan.fmt == "log" and k in keys and k not in user_heads)
    types = {
        k: S.RESPONSE_STRUCT if typed and k == "response" else "VARCHAR" if k in text_keys else "JSON" for k in keys
    }
    columns = ", ".join(f"{S.sql_str(k)}: {S.sql_str(t)}" for k, t in types.items())
    src = (
        f"SELECT NULL::BIGINT AS line_no, * FROM read_json({S.sql_str(str(plan.path))}, "
        f"format='newline_delimited', records=true, columns={{{columns}}}, "
        f"maximum_object_size={plan.max_line_bytes})"
    )
    # read_json does not enforce maximum_object_size strictly; drop oversized rows so the count check fails and
    # the careful path quarantines them by line.
    size = " + ".join(
        f"coalesce(strlen(CAST({S.quote_ident(k)} AS VARCHAR)), 0)" for k in keys if types[k] != S.RESPONSE_STRUCT
    )
    src = f"SELECT * FROM ({src}) WHERE {size} <= {plan.max_line_bytes}"
    parsed = f"WITH src AS NOT MATERIALIZED ({src}) {transform_for(plan, ('line_no', *keys), typed, text_keys)}"

    def insert_sql(batch_id: int) -> str:
        # Ids (-1) and line numbers (NULL) are placeholders until _number_rows; rows with a problem are left out,
        # which the count check turns into a fall back.
        rows = _records_select(parsed, batch_id, str(plan.path), "NULL")
        return f"INSERT INTO records ({RECORD_INSERT_COLUMNS}, record_id) SELECT *, -1 FROM ({rows})"

    report(progress, cancel, "importing", 0, 100.0, plan.path.name)
    # No other writer may run between the two transactions: it would act on rows without ids, or take them for
    # duplicates of its own. (Readers are not filtered: `WHERE record_id >= 0` in browse.BASE_SQL made DuckDB 2.0.1
    # drop the LIMIT of a keyset page ordered by slice, and the window is a fraction of a second.)
    with ws.exclusive():
        with ThreadPoolExecutor(1) as pool:
            n_lines_future = pool.submit(count_lines, plan.path)
            try:
                # The cap is a database setting, set outside the transaction (a failed statement aborts it).
                with _memory_limit(ws, IMPORT_MEMORY), ws.transaction() as cur:
                    batch_id = new_batch(cur, str(plan.path), plan.fmt, plan.options(), status="importing")
                    try:
                        n_lines = _insert_checked(
                            cur, insert_sql(batch_id), n_lines_future, progress, cancel, plan.path.name
                        )
                    except _FallBack:
                        plan.batch_id = batch_id  # this transaction rolls back; the import keeps its number
                        raise
            finally:
                n_lines_future.cancel()
        n_imported, n_dup = _finish_fast(ws, batch_id, n_lines)
    report(progress, None, "importing", 100.0, 100.0, plan.path.name)
    return ImportResult(batch_id, str(plan.path), plan.fmt, n_lines=n_lines, n_imported=n_imported,
                        n_duplicates=n_dup, options=plan.options())  # fmt: skip


def _insert_checked(
    cur: duckdb.DuckDBPyConnection,
    insert: str,
    n_lines_future: Future[int],
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    detail: str = "",
) -> int:
    """Run the INSERT, then check every line became a record (else _FallBack); the line count."""
    watch = _Watch(cur, progress, cancel, detail)
    # A new cursor does not track query progress (query_progress() stays -1 and the bar sat at 0% for the whole
    # insert): turn it on, from the first moment (not after 2 s), without DuckDB printing a bar of its own.
    cur.execute("SET enable_progress_bar = true")
    cur.execute("SET enable_progress_bar_print = false")
    cur.execute("SET progress_bar_time = 0")
    try:
        with watch:
            cur.execute("SET preserve_insertion_order = true")
            inserted = cur.execute(insert).fetchall()[0][0]
    except duckdb.InterruptException:
        raise Cancelled() from None
    except duckdb.Error:
        raise _FallBack() from None
    if watch.cancelled:
        raise Cancelled()
    n_lines = n_lines_future.result()
    if inserted != n_lines or n_lines == 0:
        raise _FallBack()
    return int(n_lines)


def _finish_fast(ws: Workspace, batch_id: int, n_lines: int) -> tuple[int, int]:
    """The second transaction (see ``_fast``); on any failure the batch is deleted. (imported, duplicates)."""
    try:
        with ws.transaction() as cur:
            return _number_and_keep_new(cur, batch_id, n_lines)
    except BaseException:
        try:
            ws.discard_interrupted_imports()  # under ws.exclusive(): this batch is the only one importing
        except Exception:
            pass  # the next open discards the 'importing' batch; the first error is the one to report
        raise


def _number_and_keep_new(cur: duckdb.DuckDBPyConnection, batch_id: int, n_lines: int) -> tuple[int, int]:
    """Number the committed rows, drop content an earlier batch holds, finish the batch; (imported, duplicates)."""
    _number_rows(cur, batch_id, n_lines)
    # A re-import adds nothing; repeats inside the file stay, as on the careful path. Numbered first, so every
    # kept row keeps its own line number.
    n_dup = cur.execute(
        "DELETE FROM records WHERE batch_id = ? AND content_hash IN (SELECT content_hash FROM records WHERE batch_id <> ?)",
        [batch_id, batch_id],
    ).fetchall()[0][0]
    finish_batch(cur, batch_id, n_lines=n_lines, n_imported=n_lines - n_dup, n_duplicates=n_dup, n_quarantined=0)
    return n_lines - n_dup, int(n_dup)


def _number_rows(cur: duckdb.DuckDBPyConnection, batch_id: int, n_rows: int) -> None:
    """Give a batch's rows record ids (one block of ``record_seq``) and line numbers, both in file order.

    The INSERT preserved file order, so row ids follow the file; committed rows of one INSERT are contiguous,
    and the window below covers any other case.
    """
    first, last, n = cur.execute(
        "SELECT min(rowid), max(rowid), count(*) FROM records WHERE batch_id = ?", [batch_id]
    ).fetchall()[0]
    if n != n_rows:
        raise RuntimeError(f"import batch {batch_id} has {n} records, expected {n_rows}; it was discarded")
    # Ids are taken as one block so they follow the file (nextval in a parallel insert would interleave chunks);
    # the sequence is then moved past the block.
    base = cur.execute("SELECT nextval('record_seq')").fetchall()[0][0]
    if last - first + 1 == n:
        cur.execute(
            "UPDATE records SET record_id = ? + rowid - ?, source_line = rowid - ? + 1 WHERE batch_id = ?",
            [base, first, first, batch_id],
        )
    else:
        cur.execute(
            "UPDATE records SET record_id = ? + o.k - 1, source_line = o.k FROM ("
            "SELECT rowid AS rid, row_number() OVER (ORDER BY rowid) AS k FROM records WHERE batch_id = ?) o "
            "WHERE records.rowid = o.rid",
            [base, batch_id],
        )
    cur.execute("SELECT setval('record_seq', ?)", [base + n - 1])


@contextmanager
def _memory_limit(ws: Workspace, limit: str) -> Iterator[None]:
    """Cap DuckDB's memory during a fast import, so a big file spills to disk instead of growing the process."""
    cur = ws.cursor()
    try:
        before = cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        cur.execute(f"SET memory_limit = {S.sql_str(limit)}")
        try:
            yield
        finally:
            cur.execute(f"SET memory_limit = {S.sql_str(before)}")
    finally:
        cur.close()
