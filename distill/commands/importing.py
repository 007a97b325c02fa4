"""`distill import`, `distill batches`, `distill undo-import`."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from curation.importing.detect import FORMATS
from curation.importing.plan import MAX_LINE_MB, ImportResult
from curation.importing.pyrepr import CONVERTED_MARK
from distill.common import add_json_flag, open_workspace
from distill.output import CliProgress, print_json, print_table

IMPORT_EXAMPLES = """examples:
  distill import logs.jsonl                                  # proxy logs; format and slice field detected
  distill import logs.jsonl.gz --slice-field metadata.product_area
  distill import batch_output.jsonl --batch-input batch_input.jsonl   # Batch API output joined by custom_id
  distill import train.jsonl --format finetune               # {"messages": [...]}, last assistant turn = answer
  distill import tickets.csv --prompt-col text --response-col category --slice-col category
  distill import a.jsonl b.jsonl --json                      # several files, one JSON report

  distill import eval_dump.json                              # a JSON array: one record per element
  distill import dump.jsonl --accept-python-repr             # lines printed with Python's repr, converted safely
  distill import gpt4.json --teacher gpt4 && distill import claude.json --teacher claude
                                                             # two teachers, same prompts: one record, two answers
  distill import outputs/*.json --teacher-field generator    # each answer's teacher named in its own field

Bad lines never stop an import: they go to quarantine with file, line and reason (see `distill stats`); in a
JSON array file the "line" is the element's number (from 1). A gzip file that breaks off imports the lines before
the break, with a warning. Answers whose prompts are already in the workspace (a Batch output imported after its
input) fill those records; answers to prompts another teacher already answered join those records as this teacher's
(its name: --teacher, else --teacher-field, else the answer's `model`). `distill undo-import` of that import removes
them again.
Exit code 0 when something was imported, attached or was already there; 1 when nothing could be imported."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "import",
        parents=[common],
        help="import production logs into the workspace",
        description="Import production logs (proxy JSONL, Batch API, fine-tuning JSONL, CSV, Parquet) as batches.",
        epilog=IMPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="files to import (.jsonl, .jsonl.gz, .csv, .parquet)")
    p.add_argument("--format", choices=FORMATS, help="override format detection")
    p.add_argument(
        "--slice-field", metavar="PATH", help="field path or column giving the slice (metadata.product_area)"
    )
    p.add_argument("--reference-field", metavar="PATH", help="field path holding a reference answer")
    p.add_argument("--batch-input", metavar="FILE", help="Batch API input file matching a Batch output file")
    p.add_argument("--prompt-col", metavar="COL", help="table column holding the prompt")
    p.add_argument("--response-col", metavar="COL", help="table column holding the teacher response")
    p.add_argument("--slice-col", metavar="COL", help="table column holding the slice")
    p.add_argument("--reference-col", metavar="COL", help="table column holding a reference answer")
    p.add_argument("--system", metavar="TEXT", help="system prompt to put before each table prompt")
    p.add_argument(
        "--max-line-mb",
        type=float,
        default=MAX_LINE_MB,
        help=f"quarantine lines longer than this (default {MAX_LINE_MB})",
    )
    p.add_argument(
        "--accept-python-repr",
        action="store_true",
        help="convert lines written with Python's repr ({'a': True}) with ast.literal_eval instead of quarantining "
        f"them; the records get metadata {CONVERTED_MARK}",
    )
    p.add_argument("--teacher", metavar="NAME", help="the teacher whose answers the files hold (over each `model`)")
    p.add_argument(
        "--teacher-field", metavar="PATH", help="field path naming each answer's teacher (generator, meta.model)"
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_import)

    b = sub.add_parser(
        "batches",
        parents=[common],
        help="list import batches",
        epilog="examples:\n  distill batches\n  distill batches --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_json_flag(b)
    b.set_defaults(func=cmd_batches)

    u = sub.add_parser(
        "undo-import",
        parents=[common],
        help="remove an import batch's records and quarantine entries",
        epilog="examples:\n  distill undo-import 3\n  distill undo-import 3 --force   # also drop reviews etc. on them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    u.add_argument("batch_id", type=int, help="batch id (see `distill batches`)")
    u.add_argument("--force", action="store_true", help="also remove reviews and other work on these records")
    add_json_flag(u)
    u.set_defaults(func=cmd_undo)


def _mapping(args: argparse.Namespace) -> dict[str, str]:
    pairs = {"prompt": args.prompt_col, "response": args.response_col, "slice": args.slice_col,
             "reference": args.reference_col}  # fmt: skip
    return {k: v for k, v in pairs.items() if v}


def _summary(r: ImportResult) -> str:
    parts = [f"{r.n_imported:,} imported"]
    if r.n_attached:
        parts.append(f"{r.n_attached:,} answers attached to prompts already here")
    if r.n_duplicates:
        parts.append(f"{r.n_duplicates:,} already in the workspace")
    if r.n_quarantined:
        parts.append(f"{r.n_quarantined:,} quarantined")
    slice_note = f", slice from {r.options.get('slice_field')}" if r.options.get("slice_field") else ""
    return (
        f"{Path(r.source_file).name}: {r.format}{slice_note}: {', '.join(parts)} ({r.seconds:.1f}s, batch {r.batch_id})"
    )


def cmd_import(args: argparse.Namespace) -> int:
    from curation.importing import import_file  # (numpy, pyarrow: only for the commands that import)

    results: list[ImportResult] = []
    mapping = _mapping(args)
    slice_field = args.slice_field or mapping.get("slice")
    with open_workspace(args, create=True) as ws:
        for f in args.files:
            progress = CliProgress(enabled=not args.json)
            try:
                r = import_file(
                    ws, f, fmt=args.format, slice_field=slice_field, reference_field=args.reference_field,
                    mapping=mapping or None, batch_input=args.batch_input, system_prompt=args.system,
                    max_line_mb=args.max_line_mb, accept_python_repr=args.accept_python_repr, teacher=args.teacher,
                    teacher_field=args.teacher_field, progress=progress,
                    cancel=threading.Event(),
                )  # fmt: skip
            finally:
                progress.close()
            results.append(r)
            if not args.json:
                print(_summary(r))
                for w in r.warnings:
                    print(f"  warning: {w}")
                for q in r.quarantine_sample:
                    src = Path(q["source_file"]).name if q.get("source_file") else Path(r.source_file).name
                    field = f" {q['field']}:" if q.get("field") else ""
                    print(f"  quarantined {src}:{q['line_no']}:{field} {q['reason']}")
                if r.n_quarantined > len(r.quarantine_sample):
                    print(f"  ... {r.n_quarantined - len(r.quarantine_sample):,} more (distill stats)")
    if args.json:
        print_json({"workspace": str(ws.path), "imports": results})
    nothing = all(r.n_imported == 0 and r.n_duplicates == 0 and r.n_attached == 0 for r in results)
    return 1 if nothing else 0


def cmd_batches(args: argparse.Namespace) -> int:
    from curation.importing import list_batches

    with open_workspace(args) as ws:
        rows = list_batches(ws)
    if args.json:
        print_json({"batches": rows})
        return 0
    if not rows:
        print("no imports yet (distill import FILE)")
        return 0
    print_table(
        ["batch", "status", "format", "file", "lines", "imported", "attached", "dupes", "quarantined", "started"],
        [
            [
                r["batch_id"],
                r["status"],
                r["format"],
                Path(r["source_file"]).name,
                r["n_lines"],
                r["n_imported"],
                r["n_attached"],
                r["n_duplicates"],
                r["n_quarantined"],
                r["started_at"],
            ]
            for r in rows
        ],
    )
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    from curation.importing import list_batches, undo_import

    with open_workspace(args) as ws:
        emptied = next((b["n_attached"] for b in list_batches(ws) if b["batch_id"] == args.batch_id), 0)
        removed = undo_import(ws, args.batch_id, force=args.force)
    doc: dict[str, Any] = {"batch_id": args.batch_id, "records_removed": removed, "answers_emptied": emptied}
    if args.json:
        print_json(doc)
    else:
        also = f", {emptied:,} answers it attached to earlier records removed again" if emptied else ""
        print(f"batch {args.batch_id} undone: {removed:,} records removed{also}")
    return 0
