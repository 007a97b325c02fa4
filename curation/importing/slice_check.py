"""After an import: say when no record got a slice, which fields could give one, and how to set it afterwards.

A log whose slice lives under a field the detector does not know (``metadata.domain``) lands in ``(none)`` whole,
and importing it again with ``--slice-field`` adds nothing (the content is already in the workspace). Both cases get
a warning naming the command that slices the records already imported: ``distill slices define NAME --field PATH``
then ``distill slices use NAME`` (a slicing by field; nothing is re-imported).
"""

from __future__ import annotations

from curation.errors import UserError
from curation.importing.detect import Detection
from curation.importing.plan import ImportPlan, ImportResult
from curation.records import NONE_SLICE
from curation.slices import field_expr
from curation.workspace import Workspace

CANDIDATES_SHOWN = 5
MAX_SHARE_DISTINCT = 0.5  # a field with a distinct value for more than half the records is an id, not a slice


def _define_hint(field: str) -> str:
    name = field.rsplit(".", 1)[-1]
    return f"distill slices define {name} --field {field} && distill slices use {name}"


def candidate_fields(ws: Workspace, batch_id: int, fields: list[str]) -> list[tuple[str, int]]:
    """Fields of the batch's records that could slice them: (path, distinct values), fewest values first. A
    candidate has at least 2 values and at most one per ``1 / MAX_SHARE_DISTINCT`` records."""
    n = int(ws.scalar("SELECT count(*) FROM records WHERE batch_id = ?", [batch_id]) or 0)
    out: list[tuple[str, int]] = []
    for f in fields:
        try:
            expr = field_expr(f)
        except UserError:
            continue  # a field the records do not keep (prompt text, messages)
        if not f.startswith("metadata.") or f.count(".") != 1:
            continue
        distinct, present = ws.query(
            f"SELECT count(DISTINCT {expr}), count({expr}) FROM records r WHERE batch_id = ?", [batch_id]
        )[0]
        if 2 <= distinct <= max(2, MAX_SHARE_DISTINCT * n) and present:
            out.append((f, int(distinct)))
    return sorted(out, key=lambda fd: (fd[1], fd[0]))


def slice_warnings(ws: Workspace, plan: ImportPlan, det: Detection, result: ImportResult) -> list[str]:
    """Warnings about slices after importing ``result``: every new record in ``(none)``, or a slice field given
    for records that were already in the workspace (and so kept their slice)."""
    out: list[str] = []
    if result.n_imported and not plan.slice_field:
        sliced = ws.scalar(
            "SELECT count(*) FROM records WHERE batch_id = ? AND coalesce(slice, ?) <> ?",
            [result.batch_id, NONE_SLICE, NONE_SLICE],
        )
        if not sliced:
            cands = candidate_fields(ws, result.batch_id, det.fields or [])
            listed = ", ".join(f"{f} ({d:,} values)" for f, d in cands[:CANDIDATES_SHOWN])
            out.append(
                f"every record landed in slice {NONE_SLICE}: no slice field was found"
                + (f"; candidate fields: {listed}; slice by the one you choose without re-importing: "
                   "distill slices define NAME --field PATH && distill slices use NAME"
                   if cands else "; give --slice-field PATH, or slice later with distill slices define")
            )  # fmt: skip
    if plan.slice_field and result.n_duplicates:
        out.append(
            f"{result.n_duplicates:,} records were already in the workspace and keep their slice; to slice every "
            f"record by {plan.slice_field} without re-importing: {_define_hint(plan.slice_field)}"
        )
    return out
