"""Tables (CSV, Parquet, JSON lines of flat objects) imported with a column mapping."""

from __future__ import annotations

import threading

import duckdb

from curation.errors import UserError
from curation.importing.attach import attach_answers, attached_warning
from curation.importing.plan import ImportPlan, ImportResult, insert_records_sql, quarantine_sample
from curation.importing.sql import quote_ident, sql_str
from curation.progress import ProgressFn, report
from curation.records import finish_batch, new_batch
from curation.workspace import Workspace

MAPPING_KEYS = ("prompt", "response", "slice", "reference", "system")
# DuckDB's reason for a rejected CSV row, without the per-row count it ends with ("... Found: 3"), so that rows
# rejected the same way share one reason (the row itself is kept in the quarantine's raw line).
CSV_REASON_SQL = "error_type || ': ' || regexp_replace(error_message, '\\s*Found: [0-9]+\\s*$', '')"


def table_transform(
    columns: list[str], mapping: dict[str, str], system_prompt: str | None, metadata_sql: str | None = None
) -> str:
    """Map table columns to record columns over ``src`` (``line_no`` + the table's columns).

    Unmapped columns become the record's metadata object, so nothing in the row is lost.
    """
    prompt = mapping["prompt"]
    mapped = {mapping[k] for k in MAPPING_KEYS if k in mapping}
    others = [c for c in columns if c not in mapped and c != "line_no"]
    meta = "json_object(" + ", ".join(f"{sql_str(c)}, {quote_ident(c)}" for c in others) + ")" if others else "NULL"
    if metadata_sql is not None:
        meta = metadata_sql

    def col(key: str) -> str:
        return f"nullif(trim(CAST({quote_ident(mapping[key])} AS VARCHAR)), '')" if key in mapping else "NULL"

    system = col("system") if "system" in mapping else (sql_str(system_prompt) if system_prompt else "NULL")
    messages = (
        f"CASE WHEN {system} IS NULL THEN json_array(json_object('role', 'user', 'content', {col('prompt')})) "
        f"ELSE json_array(json_object('role', 'system', 'content', {system}), "
        f"json_object('role', 'user', 'content', {col('prompt')})) END"
    )
    return f"""
    SELECT line_no,
        CASE WHEN {col("prompt")} IS NULL THEN {sql_str(prompt)} END AS err_field,
        CASE WHEN {col("prompt")} IS NULL THEN 'empty prompt' END AS err_reason,
        {messages} AS messages,
        {col("prompt")} AS prompt,
        {col("response")} AS response,
        CAST(NULL AS JSON) AS response_logprobs, NULL AS teacher_model, NULL AS finish_reason,
        coalesce({col("slice")}, '(none)') AS slice,
        {col("reference")} AS reference,
        {meta} AS metadata,
        CAST(NULL AS JSON) AS request_params, NULL::INTEGER AS prompt_tokens, NULL::INTEGER AS completion_tokens,
        NULL::DOUBLE AS latency_ms, NULL::TIMESTAMP AS logged_at
    FROM src
    """


def check_mapping(columns: list[str], mapping: dict[str, str], source: str) -> None:
    """Refuse a mapping that names columns the table lacks, or has no prompt column."""
    unknown = {k: v for k, v in mapping.items() if v not in columns}
    if unknown:
        k, v = next(iter(unknown.items()))
        raise UserError(f"{source}: no column {v!r} (mapped as {k}); columns are: {', '.join(columns)}")
    if "prompt" not in mapping:
        raise UserError(f"{source}: which column holds the prompt? pass --prompt-col (columns: {', '.join(columns)})")


def import_table_file(
    ws: Workspace, plan: ImportPlan, progress: ProgressFn | None, cancel: threading.Event | None
) -> ImportResult:
    """CSV or Parquet through DuckDB's readers; malformed CSV rows are quarantined with their line numbers."""
    path = sql_str(str(plan.path))
    if plan.fmt == "parquet":
        reader = f"read_parquet({path}, file_row_number=true)"
    else:
        reader = (
            f"read_csv({path}, header=true, all_varchar=true, store_rejects=true, rejects_table='_rej', "
            f"rejects_scan='_rej_scan', max_line_size={plan.max_line_bytes})"
        )
    source = str(plan.path)
    report(progress, cancel, "importing", 0, 2, plan.path.name)
    with ws.transaction() as cur:
        for t in ("_rej", "_rej_scan", "_tbl"):
            cur.execute(f"DROP TABLE IF EXISTS {t}")
        try:
            cur.execute(f"CREATE TEMP TABLE _tbl AS SELECT row_number() OVER () AS __k, * FROM {reader}")
        except duckdb.Error as exc:
            raise UserError(f"{source}: cannot read as {plan.fmt}: {str(exc).splitlines()[0]}") from None
        cols = [d[0] for d in cur.execute("SELECT * FROM _tbl LIMIT 0").description if d[0] not in ("__k",)]
        data_cols = [c for c in cols if c != "file_row_number"]
        check_mapping(data_cols, plan.mapping, source)
        batch_id = new_batch(cur, source, plan.fmt, plan.options())
        n_rej = 0
        if plan.fmt == "csv":
            n_rej = cur.execute(
                f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
                SELECT {batch_id}, {sql_str(source)}, line, column_name, {CSV_REASON_SQL},
                    left(csv_line, 2000), strlen(csv_line) FROM _rej"""
            ).fetchall()[0][0]
            # Data row k is the k-th file line (after the header) that was not rejected.
            line_sql = """(SELECT line_no FROM (SELECT i AS line_no, row_number() OVER (ORDER BY i) AS k
                FROM range(2, 2 + (SELECT count(*) FROM _tbl) + (SELECT count(*) FROM _rej)) t(i)
                WHERE i NOT IN (SELECT line FROM _rej)) m WHERE m.k = _tbl.__k)"""
            line_sql = "__k + 1" if n_rej == 0 else line_sql
        else:
            line_sql = "file_row_number + 1"
        src = f"SELECT {line_sql} AS line_no, {', '.join(quote_ident(c) for c in data_cols)} FROM _tbl"
        report(progress, cancel, "importing", 1, 2, plan.path.name)
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _parsed AS WITH src AS ({src}) "
            f"{table_transform(['line_no', *data_cols], plan.mapping, plan.system_prompt)}"
        )
        n_bad = cur.execute(
            f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
            SELECT {batch_id}, {sql_str(source)}, line_no, err_field, err_reason, NULL, NULL
            FROM _parsed WHERE err_reason IS NOT NULL"""
        ).fetchall()[0][0]
        n_rows, ok = cur.execute("SELECT count(*), count(*) FILTER (err_reason IS NULL) FROM _parsed").fetchall()[0]
        inserted = cur.execute(
            insert_records_sql("SELECT * FROM _parsed", batch_id, source, plan.teacher_sql())
        ).fetchall()[0][0]
        n_dup = ok - inserted
        attached, dup_attached = attach_answers(cur, batch_id) if plan.attach else (0, 0)
        inserted -= attached + dup_attached
        n_dup += dup_attached
        warnings = [attached_warning(attached)] if attached else []
        for t in ("_rej", "_rej_scan", "_tbl", "_parsed"):
            cur.execute(f"DROP TABLE IF EXISTS {t}")
        finish_batch(cur, batch_id, n_lines=n_rows + n_rej, n_imported=inserted, n_duplicates=n_dup,
                     n_quarantined=n_rej + n_bad, warnings=warnings)  # fmt: skip
        sample = quarantine_sample(cur, batch_id)
    report(progress, None, "importing", 2, 2, plan.path.name)
    return ImportResult(
        batch_id, source, plan.fmt, n_lines=n_rows + n_rej, n_imported=inserted, n_duplicates=n_dup,
        n_quarantined=n_rej + n_bad, n_attached=attached, warnings=warnings, quarantine_sample=sample,
        options=plan.options(),
    )  # fmt: skip
