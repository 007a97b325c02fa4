"""The careful import path: numbered lines in bounded chunks, every bad line quarantined by number and reason.

Also JSON array files (``arrays.py``: elements numbered like lines), the Batch API join (``batchjoin.py``), Python
reprs when asked (``pyrepr.py``), a broken gzip stream (the lines before the break are imported) and answers that
attach to prompts already in the workspace (``attach.py``).
"""

from __future__ import annotations

import threading
from collections import Counter

import duckdb
import pyarrow as pa

from curation.importing import batchjoin
from curation.importing import sql as S
from curation.importing.arrays import iter_element_chunks
from curation.importing.attach import attach_answers, attached_warning
from curation.importing.detect import sniff_objects
from curation.importing.lines import StreamEnd, iter_line_chunks, quarantine_lines, raw_preview_sql, stage_lines
from curation.importing.nesting import MAX_DEPTH
from curation.importing.plan import (
    ImportPlan,
    ImportResult,
    insert_records_sql,
    keys_for,
    quarantine_sample,
    transform_for,
)
from curation.importing.pyrepr import CONVERTED_MARK, REPR_REASON, convert
from curation.importing.tables import check_mapping, table_transform
from curation.progress import ProgressFn, report
from curation.records import finish_batch, new_batch
from curation.workspace import Workspace


def _json_cols(keys: tuple[str, ...]) -> str:
    paths = ", ".join(S.sql_str(S.json_path([k])) for k in keys)
    cols = ", ".join(
        f"CASE WHEN json_type(j[{i}]) = 'NULL' THEN NULL ELSE j[{i}] END AS {S.quote_ident(k)}"
        for i, k in enumerate(keys, 1)
    )
    return f"SELECT line_no, {cols} FROM (SELECT line_no, json_extract(txt, [{paths}]) AS j FROM _lines " \
        "WHERE line_err IS NULL)"  # fmt: skip


def _src_sql(plan: ImportPlan) -> tuple[str, tuple[str, ...]]:
    """The ``src`` relation over the current chunk and the columns it has."""
    if plan.fmt in ("log", "finetune"):
        keys = keys_for(plan)
        return _json_cols(keys), ("line_no", *keys)
    if plan.fmt in ("batch", "batch_input"):
        return batchjoin.batch_src_sql(plan), batchjoin.SRC_COLUMNS
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


def _convert_reprs(cur: duckdb.DuckDBPyConnection) -> int:
    """Turn the staged chunk's Python-repr lines into JSON (or say why not); the converted go to ``_converted``."""
    rows = cur.execute("SELECT line_no, txt FROM _lines WHERE line_err = ?", [REPR_REASON]).fetchall()
    done = [(n, *convert(txt, MAX_DEPTH)) for n, txt in rows]
    cur.register("_repr", pa.table({
        "line_no": pa.array([d[0] for d in done], pa.int64()), "json": pa.array([d[1] for d in done], pa.string()),
        "err": pa.array([d[2] for d in done], pa.string()),
    }))  # fmt: skip
    cur.execute("UPDATE _lines SET txt = coalesce(r.json, _lines.txt), line_err = r.err FROM _repr r "
                "WHERE _lines.line_no = r.line_no")  # fmt: skip
    cur.execute("CREATE OR REPLACE TEMP TABLE _converted AS SELECT line_no FROM _repr WHERE json IS NOT NULL")
    cur.unregister("_repr")
    return sum(1 for d in done if d[1] is not None)


def _mark_converted(cur: duckdb.DuckDBPyConnection) -> None:
    """Mark the records made from converted Python reprs in their metadata (``pyrepr.CONVERTED_KEY``)."""
    cur.execute(
        f"UPDATE _parsed SET metadata = json_merge_patch(coalesce(metadata, '{{}}'), {S.sql_str(CONVERTED_MARK)}) "
        "WHERE err_reason IS NULL AND line_no IN (SELECT line_no FROM _converted)"
    )


def _stream_end(cur: duckdb.DuckDBPyConnection, plan: ImportPlan, batch_id: int, end: StreamEnd) -> tuple[str, int]:
    """The warning for a file whose lines ended early (a broken gzip stream, a broken JSON array), and whether the
    rest went to quarantine (an unfinished last line, or a file of which nothing could be read)."""
    unit = "element" if plan.array else "line"
    warning = f"{end.problem} after {unit} {end.last_line}" if end.last_line else f"{end.problem} before any {unit}"
    if not end.partial and end.last_line:
        return warning, 0
    line_no = end.last_line + 1 if end.partial else 0
    cur.execute(
        "INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes) VALUES (?, ?, ?, NULL, ?, ?, ?)",
        [batch_id, str(plan.path), line_no, f"unreadable rest of the file: {end.problem}",
         end.partial[:8000].decode("utf-8", "replace")[:2000] or None, len(end.partial) or None],
    )  # fmt: skip
    return warning, 1


def import_careful(
    ws: Workspace, plan: ImportPlan, progress: ProgressFn | None, cancel: threading.Event | None
) -> ImportResult:
    """Import JSON lines (or a JSON array's elements) chunk by chunk, quarantining each bad one with its number and
    reason."""
    if plan.fmt == "table":
        objs, _ = sniff_objects(plan.path)
        check_mapping(sorted(set().union(*(o.keys() for o in objs))) if objs else [], plan.mapping, str(plan.path))
    total = plan.path.stat().st_size
    source = str(plan.path)
    counts: Counter[str] = Counter()
    models: Counter[tuple[str, str]] = Counter()
    warnings: list[str] = []
    end = StreamEnd()
    chunks = (
        iter_element_chunks(plan.path, cancel, end, plan.max_line_bytes)
        if plan.array
        else iter_line_chunks(plan.path, cancel, end=end)
    )
    with ws.transaction() as cur:
        batch_id = new_batch(cur, source, plan.fmt, plan.options(), batch_id=plan.batch_id)
        if plan.fmt == "batch":
            counts["quarantined"] += batchjoin.stage_batch_inputs(cur, plan, batch_id)
        report(progress, cancel, "importing", 0, total, plan.path.name)
        for table, consumed in chunks:
            stage_lines(cur, table, plan.max_line_bytes)
            converted = _convert_reprs(cur) if plan.accept_python_repr else 0
            counts["converted"] += converted
            n, blank, bom = cur.execute(
                "SELECT count(*), count(*) FILTER (line_err = 'blank'), count(*) FILTER (had_bom) FROM _lines"
            ).fetchall()[0]
            counts["lines"] += n - blank
            counts["blank"] += blank
            counts["bom"] += bom
            cur.register("_chunk_raw", table)
            counts["quarantined"] += quarantine_lines(cur, batch_id, source)
            src, columns = _src_sql(plan)
            cur.execute(f"CREATE OR REPLACE TEMP TABLE _parsed AS WITH src AS ({src}) {_transform(plan, columns)}")
            if converted:
                _mark_converted(cur)
            counts["quarantined"] += cur.execute(
                f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
                SELECT {batch_id}, {S.sql_str(source)}, p.line_no, p.err_field, p.err_reason,
                    {raw_preview_sql("c.raw", "l.txt")}, l.nbytes
                FROM _parsed p JOIN _lines l USING (line_no) JOIN _chunk_raw c USING (line_no)
                WHERE p.err_reason IS NOT NULL"""
            ).fetchall()[0][0]
            cur.unregister("_chunk_raw")
            if plan.fmt == "batch":
                models.update(batchjoin.model_mismatches(cur))
                batchjoin.note_seen(cur)
            ok = cur.execute("SELECT count(*) FROM _parsed WHERE err_reason IS NULL").fetchall()[0][0]
            inserted = cur.execute(
                insert_records_sql("SELECT * FROM _parsed", batch_id, source, plan.teacher_sql())
            ).fetchall()[0][0]
            counts["imported"] += inserted
            counts["duplicates"] += ok - inserted
            report(progress, cancel, "importing", min(consumed, total), total, plan.path.name)
        if plan.fmt == "batch":
            counts["quarantined"] += batchjoin.quarantine_unanswered(cur, plan, batch_id)
        if end.problem is not None:
            warning, n_rest = _stream_end(cur, plan, batch_id, end)
            warnings.append(warning)
            counts["quarantined"] += n_rest
        if plan.attach:
            attached, dup = attach_answers(cur, batch_id)
            counts["imported"] -= attached + dup
            counts["duplicates"] += dup
            counts["attached"] = attached
        if counts["attached"]:
            warnings.append(attached_warning(counts["attached"]))
        if warning := batchjoin.model_warning(models):
            warnings.append(warning)
        if counts["converted"]:
            warnings.append(
                f"{counts['converted']:,} Python repr line(s) converted to JSON (metadata {CONVERTED_MARK})"
            )
        if counts["bom"]:
            warnings.append(f"{counts['bom']} line(s) started with a UTF-8 byte order mark; it was stripped")
        if counts["blank"]:
            warnings.append(f"{counts['blank']} blank line(s) skipped")
        if plan.fmt == "batch" and plan.batch_input is None:
            warnings.append("no Batch input file found beside the output; pass --batch-input FILE")
        for tmp in ("_lines", "_parsed", "_converted"):
            cur.execute(f"DROP TABLE IF EXISTS {tmp}")
        batchjoin.drop_staging(cur)
        finish_batch(
            cur, batch_id, n_lines=counts["lines"], n_imported=counts["imported"],
            n_duplicates=counts["duplicates"], n_quarantined=counts["quarantined"], warnings=warnings,
        )  # fmt: skip
        sample = quarantine_sample(cur, batch_id)
    if counts["lines"] == 0 and counts["quarantined"] == 0:
        warnings.append("the file has no records")
    return ImportResult(
        batch_id, source, plan.fmt, n_lines=counts["lines"], n_imported=counts["imported"],
        n_duplicates=counts["duplicates"], n_quarantined=counts["quarantined"], n_attached=counts["attached"],
        warnings=warnings, quarantine_sample=sample, options=plan.options(),
    )  # fmt: skip
