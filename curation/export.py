"""Export a dataset version for fine-tuning: OpenAI JSONL, or messages-format JSONL/Parquet for transformers/TRL.

The held-out side goes to its own file. Exports carry only the conversation (plus, in the messages formats,
slice and weight); reviewer notes and record metadata only when asked. Request parameters (which may hold
credentials) are never exported, and anything that looks like an API key in the text is redacted and counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.effective import effective_sql
from curation.errors import UserError
from curation.options import ChoiceOption, FlagOption, OptionSet, TextOption
from curation.workspace import Workspace

FORMATS = ("openai", "jsonl", "parquet")
TRAINING = "training"  # the Parquet file `distill train` reads (curation.datasets.export_training_file)


def _existing_version(ws: Workspace, name: str) -> str:
    from curation.datasets import get_version  # (pyarrow: the CLI reads EXPORT at every start, exports are rarer)

    try:
        return get_version(ws, name).name
    except UserError as exc:
        raise EXPORT["version"].error(str(exc)) from None


EXPORT = OptionSet(
    "export",
    (
        TextOption(
            name="version",
            positional=True,
            required=True,
            help="the dataset version to export",
            resolve=_existing_version,
        ),
        ChoiceOption(
            name="format",
            choices=(*FORMATS, TRAINING),
            default="openai",
            required=True,
            help="openai (fine-tuning JSONL), jsonl / parquet (messages with slice and weight), training "
            "(the Parquet file `distill train` reads)",
        ),
        TextOption(
            name="out",
            metavar="DIR",
            help="folder (file for training); default: <workspace>.artifacts/exports/VERSION/FORMAT",
        ),
        FlagOption(name="include_notes", help="add review status/reason/reviewer (jsonl, parquet)"),
        FlagOption(name="include_metadata", help="add record metadata (jsonl, parquet)"),
    ),
)
# OpenAI, Anthropic, Hugging Face, AWS, GitHub, Google key shapes.
_KEY_RE = re.compile(
    r"\b(sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|AIza[0-9A-Za-z_-]{35})"
)


@dataclass
class ExportResult:
    """Files written and what went into them."""

    version: str
    format: str
    files: dict[str, str]  # side -> path
    lines: dict[str, int]
    redacted: int = 0
    warnings: list[str] = field(default_factory=list)


def redact(text: str) -> tuple[str, int]:
    """Replace API-key-shaped strings with [REDACTED]; returns the text and how many were replaced."""
    return _KEY_RE.subn("[REDACTED]", text)


def _notes(ws: Workspace, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    select = "record_id, status, reason, reviewer"
    base, params = effective_sql(ws)
    rows = ws.query(
        f"SELECT {select} FROM ({base}) e WHERE record_id IN (SELECT unnest(?)) AND status <> 'unreviewed'",
        [*params, ids],
    )
    return {int(r[0]): {"review_status": r[1], "review_reason": r[2], "reviewer": r[3]} for r in rows}


def export_version(
    ws: Workspace,
    version: str,
    out_dir: str | Path | None = None,
    *,
    fmt: str = EXPORT.default("format"),
    include_notes: bool = False,
    include_metadata: bool = False,
) -> ExportResult:
    """Write ``<version>.train.<ext>`` and ``<version>.heldout.<ext>`` (the latter only if the version has one).

    The default folder is ``<artifacts>/exports/<version>/<format>`` so that OpenAI and messages JSONL exports of
    one version do not overwrite each other.
    """
    if fmt not in FORMATS:
        raise EXPORT["format"].error(f"export_version writes {', '.join(FORMATS)}, got {fmt!r}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.datasets import full_conversation, get_version, member_rows

    info = get_version(ws, version)
    out = Path(out_dir) if out_dir else default_out(ws, version, fmt)
    out.mkdir(parents=True, exist_ok=True)
    res = ExportResult(version, fmt, {}, {})
    weighted = False
    for side in ("train", "heldout"):
        rows = member_rows(ws, version, side).to_pylist()
        if not rows:
            continue
        notes = _notes(ws, [r["record_id"] for r in rows]) if include_notes else {}
        meta = (
            dict(
                ws.query(
                    "SELECT record_id, CAST(metadata AS VARCHAR) FROM records WHERE record_id IN (SELECT unnest(?))",
                    [[r["record_id"] for r in rows]],
                )
            )
            if include_metadata
            else {}
        )
        docs: list[dict[str, Any]] = []
        for r in rows:
            conv = full_conversation(r["messages"], r["response"])
            for m in conv:
                m["content"], n = redact(m["content"])
                res.redacted += n
            if fmt == "openai":
                # OpenAI fine-tuning has no sample weights: duplicates become repeated lines, weights are rounded.
                reps = max(1, int(r["copies"])) * max(1, round(float(r["weight"])))
                weighted |= float(r["weight"]) != round(float(r["weight"]))
                docs.extend({"messages": conv} for _ in range(reps))
                continue
            doc: dict[str, Any] = {
                "messages": conv,
                "slice": r["slice"],
                "weight": float(r["weight"]),
                "record_id": int(r["record_id"]),
            }
            if r["teacher"] is not None:  # a teacher policy chose this answer (train.teacher_policy)
                doc["teacher"] = r["teacher"]
                if r["agreement"] is not None:
                    doc["agreement"] = r["agreement"]
            if include_notes and r["record_id"] in notes:
                doc.update(notes[r["record_id"]])
            if include_metadata:
                doc["metadata"] = meta.get(r["record_id"])
            docs.extend(doc for _ in range(max(1, int(r["copies"]))))
        ext = "parquet" if fmt == "parquet" else "jsonl"
        path = out / f"{version}.{side}.{ext}"
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pylist(docs), path)
        else:
            with path.open("w", encoding="utf-8") as fh:
                for d in docs:
                    fh.write(json.dumps(d, ensure_ascii=False) + "\n")
        res.files[side] = str(path)
        res.lines[side] = len(docs)
    if fmt == "openai" and (include_notes or include_metadata):
        res.warnings.append("OpenAI JSONL carries only messages: notes/metadata were left out (use jsonl or parquet)")
    if weighted:
        res.warnings.append("OpenAI JSONL has no sample weights: fractional weights were rounded to repeated lines")
    if res.redacted:
        res.warnings.append(f"{res.redacted} API-key-like strings were redacted")
    if info.n_heldout == 0:
        res.warnings.append("this version has no held-out side")
    return res


def default_out(ws: Workspace, version: str, fmt: str) -> Path:
    """Where an export goes when no folder is given (a file for the training format)."""
    folder = ws.artifacts_dir / "exports" / version
    return folder / f"{version}.training.parquet" if fmt == TRAINING else folder / fmt


def export_from_options(ws: Workspace, values: dict[str, Any]) -> ExportResult:
    """Export with parsed and resolved options (CLI and studio): the fine-tuning formats or the training file."""
    import pyarrow.parquet as pq

    from curation.datasets import export_training_file

    version, fmt, out = values["version"], values["format"], values.get("out")
    if fmt == TRAINING:
        path = export_training_file(ws, version, out or default_out(ws, version, fmt))
        n = int(pq.read_metadata(path).num_rows)
        return ExportResult(version, fmt, {TRAINING: str(path)}, {TRAINING: n})
    return export_version(ws, version, out, fmt=fmt, include_notes=values["include_notes"],
                          include_metadata=values["include_metadata"])  # fmt: skip
