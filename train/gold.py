"""An external gold set for ``distill eval RUN --data FILE``: any file ``distill import`` reads, with references.

The file is read by curation's importer itself (format detection, the log/finetune/Batch/table readers, field
paths, quarantine of bad lines), into a scratch workspace in a temporary folder that is deleted afterwards, as the
import preview does; the user's workspace is never written. A gold set must be clean: a line the importer would
quarantine, or a record without a reference, is an error naming the file, line and field.

Each record becomes a held-out example: the prompt turns, the reference, and the record's own answer as the
teacher's when the file has one. Where it has none, the reference stands in for the teacher (so the score is the
student against the reference, and the teacher's columns read as a teacher that always matches it).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from curation.errors import UserError
from curation.importing import detect_format, import_file
from curation.workspace import Workspace
from train.data import Example

TABLE_FORMATS = ("table", "csv", "parquet")  # formats whose fields are columns (the importer's column mapping)


@dataclass
class GoldExample(Example):
    """A gold-set row: an example that knows its line in the file."""

    source_line: int | None = None


@dataclass
class GoldSet:
    """The rows of a gold file, as evaluation examples."""

    path: str
    format: str
    examples: list[GoldExample]
    n_teacher_answers: int  # rows with their own answer; the others compare the student with the reference only

    @property
    def note(self) -> str | None:
        """What a reader of the scores must know about the teacher's columns, if anything."""
        missing = len(self.examples) - self.n_teacher_answers
        if not missing:
            return None
        return (f"{missing:,} of {len(self.examples):,} gold rows have no answer of their own: the reference stands "
                f"in for the teacher there")  # fmt: skip


def load_gold_set(
    path: str | Path,
    *,
    reference_field: str | None = None,
    slice_field: str | None = None,
    fmt: str | None = None,
    columns: dict[str, str] | None = None,
) -> GoldSet:
    """Read ``path`` with the importer (detected or given format; ``reference_field``/``slice_field`` are field
    paths, or column names for tables, as on import; ``columns`` is the import's column mapping for tables, e.g.
    ``{"prompt": "ticket"}``). ``UserError`` for an unreadable file, a bad line or a row without a reference."""
    p = Path(path).resolve()
    fmt = fmt or detect_format(p).format
    fields = {**(columns or {}), "reference": reference_field, "slice": slice_field}
    mapping = {k: v for k, v in fields.items() if v} if fmt in TABLE_FORMATS else None
    tmp = Path(tempfile.mkdtemp(prefix="distill-gold-"))
    try:
        with Workspace.open(tmp / "gold.duckdb") as ws:
            result = import_file(
                ws, p, fmt=fmt, mapping=mapping,
                reference_field=None if mapping is not None else reference_field,
                slice_field=None if mapping is not None else slice_field,
            )  # fmt: skip
            bad = ws.query("SELECT line_no, field, reason FROM quarantine ORDER BY line_no LIMIT 1")
            rows = ws.query(
                "SELECT source_line, messages, response, slice, reference FROM records ORDER BY source_line, record_id"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if bad:
        line, field, reason = bad[0]
        where = f"line {line}" + (f", field {field}" if field else "")
        more = f" ({result.n_quarantined:,} bad lines in all)" if result.n_quarantined > 1 else ""
        raise UserError(f"gold set {p.name} {where}: {reason}{more}; a gold set must import cleanly")
    if not rows:
        raise UserError(f"gold set {p.name} has no records")
    examples = []
    for line, messages, response, slice_name, reference in rows:
        if reference is None:
            hint = "--reference-field COLUMN" if fmt in TABLE_FORMATS else "--reference-field PATH"
            raise UserError(f"gold set {p.name} line {line}: no reference answer (name its field with {hint})")
        prompt = [{"role": m["role"], "content": m.get("content") or ""} for m in json.loads(messages)]
        answer = response if response is not None else reference
        examples.append(GoldExample(None, "heldout", slice_name or "(none)", 1.0,
                                    [*prompt, {"role": "assistant", "content": answer}], response, reference,
                                    source_line=line))  # fmt: skip
    return GoldSet(str(p), fmt, examples, sum(1 for e in examples if e.teacher_response is not None))
