"""The careful import path: numbered lines in bounded chunks, every bad line quarantined by number and reason.

Also the Batch API join (input file + output file by ``custom_id``).
"""

from __future__ import annotations

import threading
from collections import Counter

import duckdb

from curation.importing import sql as S
from curation.importing.detect import sniff_objects
from curation.importing.lines import CLASSIFY_SQL, iter_line_chunks, raw_preview_sql
from curation.importing.plan import (
    ImportPlan,
    ImportResult,
    insert_records_sql,
    keys_for,
    quarantine_sample,
    transform_for,
)
from curation.importing.tables import check_mapping, table_transform
from curation.progress import ProgressFn, report
from curation.records import finish_batch, new_batch
from curation.workspace import Workspace


def _classify(cur: duckdb.DuckDBPyConnection, table: object, plan: ImportPlan) -> None:
    cur.register("_chunk", table)
    max_mb = plan.max_line_bytes / 1048576
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _lines AS "
        + CLASSIFY_SQL.format(source="_chunk", max_bytes=plan.max_line_bytes, max_mb=f"{max_mb:g}")
    )
    cur.unregister("_chunk")


def _quarantine_lines(cur: duckdb.DuckDBPyConnection, batch_id: int, source: str) -> int:
    return cur.execute(
        f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
        SELECT {batch_id}, {S.sql_str(source)}, l.line_no, NULL, l.line_err,
            {raw_preview_sql("c.raw", "l.txt")}, l.nbytes
        FROM _lines l JOIN _chunk_raw c USING (line_no)
        WHERE l.line_err IS NOT NULL AND l.line_err <> 'blank'"""
    ).fetchall()[0][0]


def _json_cols(keys: tuple[str, ...]) -> str:
    paths = ", ".join(S.sql_str(S.json_path([k])) for k in keys)
    cols = ", ".join(
        f"CASE WHEN json_type(j[{i}]) = 'NULL' THEN NULL ELSE j[{i}] END AS {S.quote_ident(k)}"
        for i, k in enumerate(keys, 1)
    )
    return f"SELECT line_no, {cols} FROM (SELECT line_no, json_extract(txt, [{paths}]) AS j FROM _lines " \
        "WHERE line_err IS NULL)"  # fmt: skip


def _src_sql(plan: ImportPlan, input_name: str) -> tuple[str, tuple[str, ...]]:
    """The ``src`` relation over the current chunk and the columns it has."""
    if plan.fmt in ("log", "finetune"):
        keys = keys_for(plan)
        return _json_cols(keys), ("line_no", *keys)
    meta = (
        "json_merge_patch(CASE WHEN json_type(body, '$.metadata') = 'OBJECT' THEN json_extract(body, '$.metadata') "
        "ELSE '{}' END, json_object('custom_id', cid, 'batch_request_id', rid))"
    )
    if plan.fmt == "batch_input":
        src = f"""SELECT line_no, body AS request, CAST(NULL AS JSON) AS response, {meta} AS metadata,
            CAST(NULL AS JSON) AS "timestamp", CAST(NULL AS JSON) AS latency_ms,
            CASE WHEN cid IS NULL THEN 'line has no custom_id'
                 WHEN json_type(body) IS DISTINCT FROM 'OBJECT' THEN 'line has no request body' END AS pre_err
            FROM (SELECT line_no, json_extract_string(txt, '$.custom_id') AS cid, NULL AS rid,
                json_extract(txt, '$.body') AS body FROM _lines WHERE line_err IS NULL)"""
        return src, ("line_no", "request", "response", "metadata", "timestamp", "latency_ms", "pre_err")
    if plan.fmt == "batch":
        no_input = (
            f"'no request with this custom_id in {input_name}'"
            if plan.batch_input
            else "'no Batch input file to take the request from; pass --batch-input FILE'"
        )
        src = f"""SELECT o.line_no, i.body AS request, CASE WHEN status = 200 THEN out_body END AS response,
            {meta} AS metadata, CAST(NULL AS JSON) AS "timestamp", CAST(NULL AS JSON) AS latency_ms,
            CASE WHEN cid IS NULL THEN 'line has no custom_id'
                 WHEN json_type(err) IS DISTINCT FROM 'NULL' AND err IS NOT NULL
                     THEN 'the request failed: ' || coalesce(json_extract_string(err, '$.message'), CAST(err AS VARCHAR))
                 WHEN status IS DISTINCT FROM 200 THEN 'the request failed with HTTP ' || coalesce(CAST(status AS VARCHAR), '?')
                     || coalesce(': ' || json_extract_string(out_body, '$.error.message'), '')
                 WHEN i.cid_in IS NULL THEN {no_input} END AS pre_err
            FROM (SELECT line_no, json_extract_string(txt, '$.custom_id') AS cid, json_extract_string(txt, '$.id') AS rid,
                TRY_CAST(json_extract_string(txt, '$.response.status_code') AS INTEGER) AS status,
                json_extract(txt, '$.response.body') AS out_body, json_extract(txt, '$.error') AS err
                FROM _lines WHERE line_err IS NULL) o
            LEFT JOIN _batch_in i ON i.cid_in = o.cid"""
        src = src.replace("{meta}", meta)
        return src, ("line_no", "request", "response", "metadata", "timestamp", "latency_ms", "pre_err")
    # JSON lines of flat objects with a column mapping
    mapped = [v for v in plan.mapping.values()]
    cols = ", ".join(f"json_extract_string(txt, {S.sql_str(S.json_path([c]))}) AS {S.quote_ident(c)}" for c in mapped)
    drop = "{" + ",".join(f"{S.sql_str(c)[1:-1]!r}:null".replace("'", '"') for c in mapped) + "}"
    src = (
        f"SELECT line_no, {cols}, json_merge_patch(txt, {S.sql_str(drop)}) AS __meta FROM _lines WHERE line_err IS NULL"
    )
    return src, ("line_no", *mapped)


def _transform(plan: ImportPlan, columns: tuple[str, ...]) -> str:
    if plan.fmt == "table":
        return table_transform(list(columns), plan.mapping, plan.system_prompt, metadata_sql="__meta")
    return transform_for(plan, columns)


def _stage_batch_inputs(cur: duckdb.DuckDBPyConnection, plan: ImportPlan, batch_id: int, counts: Counter) -> None:
    cur.execute("CREATE OR REPLACE TEMP TABLE _batch_in (cid_in VARCHAR, body JSON, in_line BIGINT)")
    cur.execute("CREATE OR REPLACE TEMP TABLE _batch_seen (cid VARCHAR)")
    if plan.batch_input is None:
        return
    source = str(plan.batch_input)
    for table, _ in iter_line_chunks(plan.batch_input):
        _classify(cur, table, plan)
        cur.register("_chunk_raw", table)
        counts["quarantined"] += _quarantine_lines(cur, batch_id, source)
        cur.unregister("_chunk_raw")
        cur.execute(
            "INSERT INTO _batch_in SELECT json_extract_string(txt, '$.custom_id'), json_extract(txt, '$.body'), "
            "line_no FROM _lines WHERE line_err IS NULL"
        )
    dup = cur.execute(
        f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
        SELECT {batch_id}, {S.sql_str(source)}, in_line, 'custom_id', 'custom_id ' || cid_in || ' appears twice in the batch input',
            NULL, NULL FROM (SELECT *, row_number() OVER (PARTITION BY cid_in ORDER BY in_line) AS k FROM _batch_in)
        WHERE k > 1"""
    ).fetchall()[0][0]
    counts["quarantined"] += dup
    cur.execute("DELETE FROM _batch_in WHERE in_line IN (SELECT in_line FROM (SELECT in_line, "
                "row_number() OVER (PARTITION BY cid_in ORDER BY in_line) AS k FROM _batch_in) WHERE k > 1)")  # fmt: skip


def import_careful(
    ws: Workspace, plan: ImportPlan, progress: ProgressFn | None, cancel: threading.Event | None
) -> ImportResult:
    """Import JSON lines chunk by chunk, quarantining each bad line with its number and reason."""
    if plan.fmt == "table":
        objs, _ = sniff_objects(plan.path)
        check_mapping(sorted(set().union(*(o.keys() for o in objs))) if objs else [], plan.mapping, str(plan.path))
    total = plan.path.stat().st_size
    source = str(plan.path)
    input_name = plan.batch_input.name if plan.batch_input else ""
    counts: Counter[str] = Counter()
    warnings: list[str] = []
    with ws.transaction() as cur:
        batch_id = new_batch(cur, source, plan.fmt, plan.options(), batch_id=plan.batch_id)
        if plan.fmt == "batch":
            _stage_batch_inputs(cur, plan, batch_id, counts)
        report(progress, cancel, "importing", 0, total, plan.path.name)
        for table, consumed in iter_line_chunks(plan.path, cancel):
            _classify(cur, table, plan)
            n, blank, bom = cur.execute(
                "SELECT count(*), count(*) FILTER (line_err = 'blank'), count(*) FILTER (had_bom) FROM _lines"
            ).fetchall()[0]
            counts["lines"] += n - blank
            counts["blank"] += blank
            counts["bom"] += bom
            cur.register("_chunk_raw", table)
            counts["quarantined"] += _quarantine_lines(cur, batch_id, source)
            src, columns = _src_sql(plan, input_name)
            cur.execute(f"CREATE OR REPLACE TEMP TABLE _parsed AS WITH src AS ({src}) {_transform(plan, columns)}")
            counts["quarantined"] += cur.execute(
                f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
                SELECT {batch_id}, {S.sql_str(source)}, p.line_no, p.err_field, p.err_reason,
                    {raw_preview_sql("c.raw", "l.txt")}, l.nbytes
                FROM _parsed p JOIN _lines l USING (line_no) JOIN _chunk_raw c USING (line_no)
                WHERE p.err_reason IS NOT NULL"""
            ).fetchall()[0][0]
            cur.unregister("_chunk_raw")
            ok = cur.execute("SELECT count(*) FROM _parsed WHERE err_reason IS NULL").fetchall()[0][0]
            inserted = cur.execute(insert_records_sql("SELECT * FROM _parsed", batch_id, source)).fetchall()[0][0]
            counts["imported"] += inserted
            counts["duplicates"] += ok - inserted
            if plan.fmt == "batch":
                cur.execute("INSERT INTO _batch_seen SELECT json_extract_string(txt, '$.custom_id') FROM _lines "
                            "WHERE line_err IS NULL")  # fmt: skip
            report(progress, cancel, "importing", min(consumed, total), total, plan.path.name)
        if plan.fmt == "batch" and plan.batch_input is not None:
            counts["quarantined"] += cur.execute(
                f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
                SELECT {batch_id}, {S.sql_str(str(plan.batch_input))}, in_line, 'custom_id',
                    'no result for custom_id ' || cid_in || ' in {plan.path.name.replace("'", "''")}', NULL, NULL
                FROM _batch_in WHERE cid_in NOT IN (SELECT cid FROM _batch_seen WHERE cid IS NOT NULL)"""
            ).fetchall()[0][0]
        if counts["bom"]:
            warnings.append(f"{counts['bom']} line(s) started with a UTF-8 byte order mark; it was stripped")
        if counts["blank"]:
            warnings.append(f"{counts['blank']} blank line(s) skipped")
        if plan.fmt == "batch" and plan.batch_input is None:
            warnings.append("no Batch input file found beside the output; pass --batch-input FILE")
        for tmp in ("_lines", "_parsed", "_batch_in", "_batch_seen"):
            cur.execute(f"DROP TABLE IF EXISTS {tmp}")
        finish_batch(
            cur, batch_id, n_lines=counts["lines"], n_imported=counts["imported"],
            n_duplicates=counts["duplicates"], n_quarantined=counts["quarantined"], warnings=warnings,
        )  # fmt: skip
        sample = quarantine_sample(cur, batch_id)
    if counts["lines"] == 0 and counts["quarantined"] == 0:
        warnings.append("the file has no records")
    return ImportResult(
        batch_id, source, plan.fmt, n_lines=counts["lines"], n_imported=counts["imported"],
        n_duplicates=counts["duplicates"], n_quarantined=counts["quarantined"], warnings=warnings,
        quarantine_sample=sample, options=plan.options(),
    )  # fmt: skip
