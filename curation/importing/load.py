"""``import_file``: bring one file into the workspace as an import batch, all or nothing.

Clean JSON-lines files take the fast path (``fast.py``: one DuckDB ``read_json`` pass, kept only if every line
became a record; content already in the workspace is then dropped). Anything else (bad lines, blank lines, a BOM,
Batch joins) takes the careful path (``careful.py``): numbered lines in bounded chunks, each bad line quarantined
with its line number and reason, good lines imported. This module only decides which.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from curation.errors import UserError
from curation.importing import careful, fast, tables
from curation.importing.detect import FORMATS, Detection, detect_format
from curation.importing.plan import MAX_LINE_MB, ImportPlan, ImportResult
from curation.importing.slice_check import slice_warnings
from curation.importing.streams import open_binary
from curation.progress import ProgressFn
from curation.records import finish_batch, new_batch, set_batch_warnings
from curation.workspace import Workspace

__all__ = ["ImportResult", "import_file"]


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
    accept_python_repr: bool = False,
    attach: bool = True,
    teacher: str | None = None,
    teacher_field: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ImportResult:
    """Import ``path`` as one batch. Bad lines go to quarantine; raises UserError only for unusable requests.

    ``accept_python_repr`` converts Python-repr lines instead of quarantining them (``pyrepr.py``); ``attach=False``
    imports answers as new records even when their prompts wait in the workspace (``attach.py``; the teacher's
    Batch collection attaches its answers itself). ``teacher`` names the teacher of every answer in the file (else
    ``teacher_field``, a metadata field path, else each answer's own ``model``); an answer to a prompt another teacher
    already answered becomes that teacher's output on the existing record (``attach.py``).
    """
    if teacher is not None and not teacher.strip():
        raise UserError("--teacher: give a teacher name")
    started = time.monotonic()
    p = Path(path).resolve()
    det = detect_format(p, accept_python_repr=accept_python_repr)
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "table" and det.format in ("csv", "parquet"):
        fmt = det.format  # a table in a CSV or Parquet file: read its columns the way detection did
    plan = ImportPlan(
        path=p,
        fmt=fmt or det.format,
        slice_field=slice_field or det.slice_field,
        reference_field=reference_field or det.reference_field,
        mapping={**(det.mapping or {}), **(mapping or {})},
        batch_input=Path(batch_input).resolve() if batch_input else det.batch_input,
        system_prompt=system_prompt,
        max_line_bytes=int(max_line_mb * 1024 * 1024),
        array=det.array,
        accept_python_repr=accept_python_repr,
        attach=attach,
        teacher=teacher.strip() if teacher else None,
        teacher_field=teacher_field or None,
    )
    if plan.fmt == "table":
        # A table's columns are its fields: --slice-field / --reference-field name columns as --slice-col does.
        for key, fld in (("slice", plan.slice_field), ("reference", plan.reference_field)):
            if fld and key not in plan.mapping:
                plan.mapping[key] = fld
    if plan.batch_input is not None and not plan.batch_input.exists():
        raise UserError(f"batch input file {plan.batch_input} does not exist")
    result = _run(ws, plan, det, progress, cancel)
    extra = slice_warnings(ws, plan, det, result)
    if extra and result.batch_id is not None:
        result.warnings.extend(extra)
        with ws.transaction() as cur:
            set_batch_warnings(cur, result.batch_id, result.warnings)
    result.seconds = time.monotonic() - started
    return result


def _run(ws: Workspace, plan: ImportPlan, det: Detection, progress: ProgressFn | None, cancel: threading.Event | None):
    if det.problem:
        return _whole_file_problem(ws, plan, det.problem)
    # A byte order mark (a file saved by a Windows editor) goes the careful way, which strips and reports it.
    if plan.fmt in ("log", "finetune") and not plan.array and not _starts_with_bom(plan.path):
        try:
            return fast.import_fast(ws, plan, progress, cancel)
        except fast.FallBack:
            pass
    if plan.fmt in ("csv", "parquet"):
        return tables.import_table_file(ws, plan, progress, cancel)
    return careful.import_careful(ws, plan, progress, cancel)


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
