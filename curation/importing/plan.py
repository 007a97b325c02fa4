"""What one import is: its plan (file, format, fields), its result, and the SQL that turns its rows into records.

Shared by the fast path (``fast.py``), the careful path (``careful.py``) and tables (``tables.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from curation.importing import sql as S
from curation.records import CONTENT_HASH_SQL, LOGPROB_LIST_SQL

MAX_LINE_MB = 8
QUARANTINE_SAMPLE = 10
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
    n_attached: int = 0  # answers that filled prompts already in the workspace (see attach.py), not new records
    warnings: list[str] = field(default_factory=list)
    quarantine_sample: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ImportPlan:
    """What to import and how: the resolved format, fields and options."""

    path: Path
    fmt: str
    slice_field: str | None
    reference_field: str | None
    mapping: dict[str, str]
    batch_input: Path | None
    system_prompt: str | None
    max_line_bytes: int
    array: bool = False  # the file is one JSON array: its elements are the records (arrays.py)
    accept_python_repr: bool = False  # convert Python-repr lines instead of quarantining them (pyrepr.py)
    attach: bool = True  # answers to prompts already in the workspace fill those records (attach.py)
    batch_id: int | None = None  # set when the fast path rolled back: the careful path reuses its batch number
    teacher: str | None = None  # the teacher whose answers these are (``--teacher``), over the answers' own model
    teacher_field: str | None = None  # or a field path in the record's metadata naming it (``--teacher-field``)

    def teacher_sql(self) -> str | None:
        """SQL naming each answer's teacher when the import names one (None: the answer's own ``model``)."""
        if self.teacher:
            return S.sql_str(self.teacher)
        if self.teacher_field:
            return f"json_extract_string(metadata, {S.sql_str('$.' + self.teacher_field)})"
        return None

    def options(self) -> dict[str, Any]:
        """The options recorded with the batch (``import_batches.options``)."""
        extra: dict[str, Any] = {"container": "array"} if self.array else {}
        if self.accept_python_repr:
            extra["accept_python_repr"] = True
        if not self.attach:
            extra["attach"] = False
        if self.teacher or self.teacher_field:
            extra["teacher"] = self.teacher or {"field": self.teacher_field}
        return {
            "slice_field": self.slice_field,
            "reference_field": self.reference_field,
            "mapping": self.mapping or None,
            "batch_input": str(self.batch_input) if self.batch_input else None,
            **extra,
        }


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


def records_select(parsed: str, batch_id: int, source: str, line_sql: str, teacher_sql: str | None = None) -> str:
    """The record columns (``RECORD_INSERT_COLUMNS`` order) of the good rows of ``parsed``; ``h`` is the hash.

    ``teacher_sql`` (``ImportPlan.teacher_sql``) names the teacher; it is then part of the content hash, so another
    teacher's answer identical to one already here is not taken for a re-import of it (``attach.py`` attaches it).
    """
    teacher = f"coalesce({teacher_sql}, teacher_model)" if teacher_sql else "teacher_model"
    resp = f"concat_ws(chr(31), response, {teacher_sql})" if teacher_sql else "response"
    h = CONTENT_HASH_SQL.format(m="messages", r=resp, md="metadata")
    return f"""
    SELECT {batch_id}, {S.sql_str(source)}, {line_sql}, messages, prompt, response, response_logprobs, {teacher},
        finish_reason, slice, reference, metadata, request_params, prompt_tokens, completion_tokens, latency_ms,
        logged_at, h, list_avg(lps), list_min(lps)
    FROM (SELECT *, {h} AS h, {LOGPROB_LIST_SQL} AS lps FROM ({parsed}) WHERE err_reason IS NULL)
    """


def insert_records_sql(parsed: str, batch_id: int, source: str, teacher_sql: str | None = None) -> str:
    """INSERT of the good rows of ``parsed``, skipping content already imported by an earlier batch.

    Duplicates inside one file are kept (production traffic repeats; exact dedupe is a curation step), so the
    fast and the careful path agree whatever the chunking.
    """
    return f"""
    INSERT INTO records ({RECORD_INSERT_COLUMNS}) {records_select(parsed, batch_id, source, "line_no", teacher_sql)}
    WHERE h NOT IN (SELECT content_hash FROM records WHERE batch_id <> {batch_id})
    """


def quarantine_sample(cur: duckdb.DuckDBPyConnection, batch_id: int) -> list[dict[str, object]]:
    rows = cur.execute(
        "SELECT source_file, line_no, field, reason FROM quarantine WHERE batch_id = ? ORDER BY source_file, line_no "
        f"LIMIT {QUARANTINE_SAMPLE}",
        [batch_id],
    ).fetchall()
    return [{"source_file": r[0], "line_no": r[1], "field": r[2], "reason": r[3]} for r in rows]
