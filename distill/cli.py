"""Entry point of the ``distill`` command.

Each module in ``distill.commands`` defines ``register(subparsers, common)`` and adds its subcommands;
a subcommand's handler is ``func(args) -> int``. Conventions for every subcommand:

* ``-w/--workspace PATH`` (default ``$DISTILL_WORKSPACE``, else ``./distill.duckdb``), from ``common``;
* ``--json`` on every command that reports something: one JSON document on stdout;
* ``--help`` with examples (``epilog``).

Exit codes (the README's "When things go wrong" lists them for users): 0 success; 1 a user error or a fault of the
environment (bad input, full disk, read-only folder, damaged workspace, unreachable teacher), one line on stderr;
2 bad usage (argparse); 70 an internal error, i.e. a bug (one line; ``DISTILL_DEBUG=1`` adds the traceback);
130 cancelled (Ctrl-C). No traceback reaches a user unless ``DISTILL_DEBUG`` is set.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import threading
import traceback
from collections.abc import Sequence

from curation.errors import Cancelled, UserError
from curation.faults import describe
from distill import commands
from distill.common import workspace_path

EXIT_OK = 0
EXIT_ERROR = 1  # user error or environment fault
EXIT_INTERNAL = 70  # a bug (EX_SOFTWARE in sysexits.h)
EXIT_CANCELLED = 130

# Command modules in the order of the work (help lists them so); modules not named here come after, by name.
WORKFLOW_ORDER = (
    "importing",
    "stats",
    "studio",
    "review",
    "slices",
    "dedupe",
    "split",
    "filter",
    "rebalance",
    "oversample",
    "versions",
    "export",
    "teacher",
    "baseline",
    "train",
    "rounds",
    "checklist",
    "backup",
)


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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser with every discovered subcommand; with ``only`` (a command ``commands.MODULE_OF`` knows),
    just the module that registers it (a faster start; help and usage errors take the full parser)."""
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
    names = (
        [commands.MODULE_OF[only]]
        if only in commands.MODULE_OF
        else [i.name for i in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: _order(i.name))]
    )
    for name in names:
        importlib.import_module(f"{commands.__name__}.{name}").register(sub, common)
    return parser


def _fault_message(exc: BaseException, args: argparse.Namespace) -> str | None:
    """A one-line message for a known environment fault in ``exc`` or what caused it; None for a bug."""
    workspace = workspace_path(args)
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        message = describe(seen, workspace=workspace, importing=getattr(args, "command", None) == "import")
        if message is not None:
            return message
        seen = seen.__cause__ or seen.__context__
    return None


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    if os.environ.get("DISTILL_DEBUG"):
        traceback.print_exc()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the subcommand, and map every error to one line on stderr and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=argv[0] if argv else None)
    args = parser.parse_args(argv)

    def thread_failed(hook: threading.ExceptHookArgs) -> None:  # a worker thread's error: one line, as below
        if hook.exc_value is not None and not isinstance(hook.exc_value, KeyboardInterrupt | Cancelled):
            message = _fault_message(hook.exc_value, args) or f"internal error in a worker thread: {hook.exc_value!r}"
            print(f"error: {message}", file=sys.stderr)
            if os.environ.get("DISTILL_DEBUG"):
                traceback.print_exception(hook.exc_type, hook.exc_value, hook.exc_traceback)

    previous, threading.excepthook = threading.excepthook, thread_failed
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except (KeyboardInterrupt, Cancelled):
        print("cancelled; nothing was changed", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        message = _fault_message(exc, args)
        if message is not None:
            return _fail(message, EXIT_ERROR)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return _fail(
            f"internal error: {type(exc).__name__}: {first} (run with DISTILL_DEBUG=1 for the traceback)",
            EXIT_INTERNAL,
        )
    finally:
        threading.excepthook = previous
