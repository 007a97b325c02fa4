"""Entry point of the ``distill`` command.

Each module in ``distill.commands`` defines ``register(subparsers, common)`` and adds its subcommands;
a subcommand's handler is ``func(args) -> int``. Conventions for every subcommand:

* ``-w/--workspace PATH`` (default ``$DISTILL_WORKSPACE``, else ``./distill.duckdb``), from ``common``;
* ``--json`` on every command that reports something: one JSON document on stdout;
* exit 0 on success, 1 on a user error (one line on stderr), 2 on bad usage (argparse);
* ``--help`` with examples (``epilog``).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from curation.errors import Cancelled, UserError
from distill import commands

# Command groups in the order of the work (help lists them so); modules not named here come after, by name.
WORKFLOW_ORDER = ("importing", "stats", "studio", "curate", "teacher", "train")


def _order(name: str) -> tuple[int, str]:
    return (WORKFLOW_ORDER.index(name) if name in WORKFLOW_ORDER else len(WORKFLOW_ORDER), name)


def common_parser() -> argparse.ArgumentParser:
    """Options shared by every subcommand (added as a parent parser)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-w",
        "--workspace",
        metavar="PATH",
        default=None,
        help="workspace file (default: $DISTILL_WORKSPACE, else ./distill.duckdb)",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="distill",
        description="Distill Studio: curate production LLM traffic into a training set for a small student model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  distill demo                                  # sample workspace, opened in the studio\n"
            "  distill import logs.jsonl -w shop.duckdb      # import production logs\n"
            "  distill stats -w shop.duckdb                  # slices, batches, quarantine\n"
            "  distill COMMAND --help                        # details and examples for one command"
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_parser()
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: _order(i.name)):
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        mod.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the subcommand, and map errors to exit codes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Cancelled):
        print("cancelled; nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
