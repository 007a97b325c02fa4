"""``distill export VERSION``: a dataset version as OpenAI JSONL, messages JSONL/Parquet, or the training file."""

from __future__ import annotations

import argparse

from curation.export import EXPORT, TRAINING, default_out, export_from_options
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import print_json

EXAMPLES = """examples:
  distill export prod-v1                       # OpenAI fine-tuning JSONL
  distill export prod-v1 --format parquet --out exports/
  distill export prod-v1 --format jsonl --include-notes
  distill export prod-v1 --format training     # the Parquet file `train` reads"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", parents=[common], formatter_class=RAW, help="export a dataset version",
                       epilog=EXAMPLES)  # fmt: skip
    EXPORT.add_to_parser(p)
    add_dry_run(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from curation.datasets import get_version

    with open_workspace(args) as ws:
        v = read_options(EXPORT, args, ws)
        if args.dry_run:
            info = get_version(ws, v["version"])
            print(f"would export {info.name} as {v['format']}: {info.n_train} train + {info.n_heldout} held-out "
                  f"records to {v['out'] or default_out(ws, info.name, v['format'])}")  # fmt: skip
            return 0
        res = export_from_options(ws, v)
    if v["format"] == TRAINING:
        path = res.files[TRAINING]
        print_json({"file": path}) if args.json else print(f"wrote {path}")
        return 0
    if args.json:
        print_json(res)
        return 0
    for side, path in res.files.items():
        print(f"{side}: {res.lines[side]} lines -> {path}")
    for w in res.warnings:
        print(f"warning: {w}")
    return 0
