"""`distill studio [WORKSPACE]` and `distill demo`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from curation.errors import UserError
from curation.workspace import Workspace, default_workspace_path

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "production_logs.jsonl.gz"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "studio",
        parents=[common],
        help="open the studio on a workspace",
        epilog="examples:\n  distill studio shop.duckdb          # a new name creates an empty workspace, opened on Import\n"
        "  DISTILL_WORKSPACE=shop.duckdb distill studio",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("path", nargs="?", metavar="WORKSPACE", help="workspace file (or use -w)")
    s.set_defaults(func=cmd_studio)
    d = sub.add_parser(
        "demo",
        parents=[common],
        help="create the sample workspace (once) and open the studio on it",
        epilog="examples:\n  distill demo                 # ./demo.duckdb\n  distill demo -w /tmp/demo.duckdb\n"
        "  distill demo --no-open       # only create it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--no-open", action="store_true", help="create the sample workspace but do not open the studio")
    d.set_defaults(func=cmd_demo)


def _run(ws: Workspace, start: str = "overview") -> None:
    from studio.app import run_studio  # Textual only when the studio is opened

    if not sys.stdout.isatty():
        raise UserError("the studio needs a terminal (stdout is not a TTY)")
    run_studio(ws, start=start)


def cmd_studio(args: argparse.Namespace) -> int:
    named = args.path or args.workspace or os.environ.get("DISTILL_WORKSPACE")
    path = Path(named or default_workspace_path())
    if not path.exists() and not named:
        # Only a workspace the user named is created: a bare `distill studio` in the wrong folder should not
        # leave an empty distill.duckdb behind.
        raise UserError(
            f"no workspace at {path}; name one to create it (`distill studio shop.duckdb`), "
            f"import into one (`distill import FILE -w {path}`) or try `distill demo`"
        )
    created = not path.exists()
    if created and not sys.stdout.isatty():
        raise UserError("the studio needs a terminal (stdout is not a TTY)")  # before creating anything
    with Workspace.open(path) as ws:
        if created:
            print(f"created empty workspace {path}", file=sys.stderr)
        empty = not ws.scalar("SELECT count(*) FROM records")
        _run(ws, start="import" if empty else "overview")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    path = Path(args.workspace or os.environ.get("DISTILL_DEMO_WORKSPACE") or "demo.duckdb")
    with Workspace.open(path) as ws:
        if not ws.scalar("SELECT count(*) FROM import_batches WHERE status = 'done'"):
            from curation.importing import import_file

            if not SAMPLE.exists():
                raise UserError(f"sample data missing at {SAMPLE}; run python sample_data/generate.py")
            r = import_file(ws, SAMPLE)
            print(f"created sample workspace {path}: {r.n_imported:,} records", file=sys.stderr)
        if not args.no_open:
            _run(ws)
    return 0
