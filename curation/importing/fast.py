"""The fast import path: clean JSON lines in one parallel DuckDB pass, then numbered in a second transaction.

Kept only if every line became a record (else ``FallBack`` and the careful path runs); content already in the
workspace is then dropped.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import duckdb

from curation.errors import Cancelled
from curation.importing import sql as S
from curation.importing.attach import attach_answers, attached_warning
from curation.importing.lines import count_lines
from curation.importing.plan import (
    RECORD_INSERT_COLUMNS,
    ImportPlan,
    ImportResult,
    keys_for,
    records_select,
    transform_for,
)
from curation.importing.streams import StreamError
from curation.importing.watch import Watch, memory_limit
from curation.progress import ProgressFn, report
from curation.records import finish_batch, new_batch
from curation.workspace import Workspace

IMPORT_MEMORY = "1536MB"  # DuckDB memory cap during a fast import, so a huge file spills instead of growing


class FallBack(Exception):
    """The fast path saw something it can't account for line by line; redo carefully."""


def import_fast(
    ws: Workspace, plan: ImportPlan, progress: ProgressFn | None, cancel: threading.Event | None
) -> ImportResult:
    """One parallel pass over a clean file; raises FallBack when any line needs the careful path.

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
        rows = records_select(parsed, batch_id, str(plan.path), "NULL", plan.teacher_sql())
        return f"INSERT INTO records ({RECORD_INSERT_COLUMNS}, record_id) SELECT *, -1 FROM ({rows})"

    report(progress, cancel, "importing", 0, 100.0, plan.path.name)
    # No other writer may run between the two transactions: it would act on rows without ids, or take them for
    # duplicates of its own. (Readers are not filtered: `WHERE record_id >= 0` in the browse relation made DuckDB 2.0.1
    # drop the LIMIT of a keyset page ordered by slice, and the window is a fraction of a second.)
    with ws.exclusive():
        with ThreadPoolExecutor(1) as pool:
            n_lines_future = pool.submit(count_lines, plan.path)
            try:
                # The cap is a database setting, set outside the transaction (a failed statement aborts it).
                with memory_limit(ws, IMPORT_MEMORY), ws.transaction() as cur:
                    batch_id = new_batch(cur, str(plan.path), plan.fmt, plan.options(), status="importing")
                    try:
                        n_lines = _insert_checked(
                            cur, insert_sql(batch_id), n_lines_future, progress, cancel, plan.path.name
                        )
                    except FallBack:
                        plan.batch_id = batch_id  # this transaction rolls back; the import keeps its number
                        raise
            finally:
                n_lines_future.cancel()
        n_imported, n_dup, attached, warnings = _finish_fast(ws, batch_id, n_lines, plan.attach)
    report(progress, None, "importing", 100.0, 100.0, plan.path.name)
    return ImportResult(batch_id, str(plan.path), plan.fmt, n_lines=n_lines, n_imported=n_imported,
                        n_duplicates=n_dup, n_attached=attached, warnings=warnings,
                        options=plan.options())  # fmt: skip


def _insert_checked(
    cur: duckdb.DuckDBPyConnection,
    insert: str,
    n_lines_future: Future[int],
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    detail: str = "",
) -> int:
    """Run the INSERT, then check every line became a record (else FallBack); the line count."""
    watch = Watch(cur, progress, cancel, detail)
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
        raise FallBack() from None
    # A cancel that arrives while the statement ends (between two polls of the watch) still cancels: the caller
    # rolls the transaction back instead of keeping an import the user asked to stop.
    if watch.cancelled or (cancel is not None and cancel.is_set()):
        raise Cancelled()
    try:
        n_lines = n_lines_future.result()
    except StreamError:  # a broken gzip stream: the careful path imports the lines before the break
        raise FallBack() from None
    if inserted != n_lines or n_lines == 0:
        raise FallBack()
    return int(n_lines)


def _finish_fast(ws: Workspace, batch_id: int, n_lines: int, attach: bool) -> tuple[int, int, int, list[str]]:
    """The second transaction (see ``import_fast``); on any failure the batch is deleted.

    (imported, duplicates, attached, warnings).
    """
    try:
        with ws.transaction() as cur:
            return _number_and_keep_new(cur, batch_id, n_lines, attach)
    except BaseException:
        try:
            ws.discard_interrupted_imports()  # under ws.exclusive(): this batch is the only one importing
        except Exception:
            pass  # the next open discards the 'importing' batch; the first error is the one to report
        raise


def _number_and_keep_new(
    cur: duckdb.DuckDBPyConnection, batch_id: int, n_lines: int, attach: bool
) -> tuple[int, int, int, list[str]]:
    """Number the committed rows, drop content an earlier batch holds, attach answers to waiting prompts, finish
    the batch; (imported, duplicates, attached, warnings)."""
    _number_rows(cur, batch_id, n_lines)
    # A re-import adds nothing; repeats inside the file stay, as on the careful path. Numbered first, so every
    # kept row keeps its own line number.
    n_dup = cur.execute(
        "DELETE FROM records WHERE batch_id = ? AND content_hash IN (SELECT content_hash FROM records WHERE batch_id <> ?)",
        [batch_id, batch_id],
    ).fetchall()[0][0]
    # Answers to prompts already waiting in the workspace fill them (one cheap check when no prompt is waiting).
    attached, dup_attached = attach_answers(cur, batch_id) if attach else (0, 0)
    n_dup += dup_attached
    warnings = [attached_warning(attached)] if attached else []
    n_imported = n_lines - n_dup - attached
    finish_batch(cur, batch_id, n_lines=n_lines, n_imported=n_imported, n_duplicates=n_dup, n_quarantined=0,
                 warnings=warnings)  # fmt: skip
    return n_imported, int(n_dup), attached, warnings


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
