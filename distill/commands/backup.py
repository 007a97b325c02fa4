"""``distill backup`` and ``distill restore``: a workspace to a folder and back (see ``curation.backup``)."""

from __future__ import annotations

import argparse

from curation.backup import backup_workspace, restore_workspace
from distill.common import add_json_flag, open_workspace, workspace_path
from distill.output import print_json

RAW = argparse.RawDescriptionHelpFormatter
EPILOG = """examples:
  distill backup -w shop.duckdb                     # into shop.backups/<date-time>/ beside the workspace
  distill backup /mnt/safe/shop-monday -w shop.duckdb
  distill restore shop.backups/20260106-093000 -w shop-restored.duckdb   # a new workspace with every record

A backup is DuckDB's EXPORT DATABASE (Parquet + SQL, readable by any DuckDB version) plus distill-backup.json
with every table's row count, which a restore checks. The artifacts folder (models, exports) is not included.
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    b = sub.add_parser("backup", help="export the workspace into a backup folder", parents=[common],
                       formatter_class=RAW, epilog=EPILOG)  # fmt: skip
    b.add_argument("dest", nargs="?", metavar="DEST", help="a new or empty folder (default: <stem>.backups/<time>/)")
    add_json_flag(b)
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="make a new workspace (-w) from a backup folder", parents=[common],
                       formatter_class=RAW, epilog=EPILOG)  # fmt: skip
    r.add_argument("src", metavar="SRC", help="a folder made by `distill backup`")
    add_json_flag(r)
    r.set_defaults(func=cmd_restore)


def cmd_backup(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        res = backup_workspace(ws, args.dest)
    if args.json:
        print_json(res)
    else:
        print(f"backed up {res.records:,} records ({len(res.tables)} tables, schema v{res.schema_version}) "
              f"to {res.folder}")  # fmt: skip
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    res = restore_workspace(args.src, workspace_path(args))
    if args.json:
        print_json(res)
    else:
        print(f"restored {res.records:,} records into {res.workspace} (schema v{res.schema_version})")
    return 0
