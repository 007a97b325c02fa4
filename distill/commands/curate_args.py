"""Argument definitions for the curation commands (kept apart so each module stays readable).

Discovered as a command module too; its ``register`` adds nothing (``curate.register`` calls ``register_curate``).
"""

from __future__ import annotations

import argparse
from typing import Any

from distill.common import add_json_flag

RAW = argparse.RawDescriptionHelpFormatter


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Nothing: the curation commands are registered by ``distill.commands.curate``."""


def _dry(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="preview only; change nothing")


def _pool(p: argparse.ArgumentParser) -> None:
    from distill.commands.curate import add_pool_flags

    add_pool_flags(p)


def register_curate(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, h: dict[str, Any]) -> None:
    """Add the subcommands, wiring handlers from ``h`` (the curate module's namespace)."""
    p = sub.add_parser(
        "slices",
        parents=[common],
        formatter_class=RAW,
        help="slice shares; define slicings",
        epilog="examples:\n  distill slices                                   # shares per slice\n"
        "  distill slices define area --field metadata.product_area --dry-run\n"
        "  distill slices define topics --clusters 12 --seed 0\n"
        "  distill slices define len --sql \"CASE WHEN length(prompt) > 200 THEN 'long' ELSE 'short' END\"\n"
        "  distill slices use area                          # curation uses it from now on\n"
        "  distill slices list",
    )
    add_json_flag(p)
    p.add_argument("--slicing", metavar="NAME", help="show shares under this slicing")
    p.set_defaults(func=h["cmd_slices"], action=None)
    ss = p.add_subparsers(dest="action", metavar="ACTION")
    d = ss.add_parser("define", parents=[common], help="define a slicing by field, SQL or clusters")
    d.add_argument("name")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--field", metavar="PATH", help="records column or metadata.KEY")
    g.add_argument("--sql", metavar="EXPR", help="SQL expression over records r")
    g.add_argument("--clusters", type=int, metavar="K", help="k-means over prompt embeddings, named by terms")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--model", metavar="PATH", help="sentence-transformers model folder (default all-MiniLM-L6-v2)")
    _dry(d)
    add_json_flag(d)
    u = ss.add_parser("use", parents=[common], help="make a slicing the default ('-' = records' own slice)")
    u.add_argument("name")
    add_json_flag(u)
    li = ss.add_parser("list", parents=[common], help="stored slicings")
    add_json_flag(li)

    p = sub.add_parser(
        "rebalance",
        parents=[common],
        formatter_class=RAW,
        help="plan/apply a rebalanced version",
        description="Plan a dataset version whose slice shares match a target: down-sample over-represented slices,\n"
        "up-weight (or duplicate) under-represented ones. Seeded; records are never changed or deleted.\n"
        "Usual order: dedupe -> split make -> filter -> rebalance --name V -> export V.",
        epilog="examples:\n  distill rebalance --to production --dry-run\n"
        "  distill rebalance --to production --since 2026-01-01 --until 2026-02-01 --name prod-v1\n"
        "  distill rebalance --to shares --shares billing=0.3,security=0.1 --mode duplicate --name v2\n"
        "  distill rebalance --to min-count --min-count 50 --max-factor 4 --name v3",
    )
    p.add_argument(
        "--to",
        choices=["production", "shares", "min-count"],
        default="production",
        help="target: shares of all imported logs (production, default), --shares, or --min-count per slice",
    )
    p.add_argument("--shares", action="append", metavar="SLICE=SHARE[,...]", help="with --to shares")
    p.add_argument("--min-count", type=int, help="with --to min-count: at least this many per slice")
    p.add_argument("--since", metavar="ISO", help="production window start (logged_at)")
    p.add_argument("--until", metavar="ISO", help="production window end")
    p.add_argument(
        "--mode", choices=["weight", "duplicate"], default="weight", help="how to up-sample (default weight)"
    )
    p.add_argument("--max-factor", type=float, default=5.0, help="cap on up-sampling (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the down-sampling (default 0)")
    p.add_argument("--size", type=int, help="train size to aim for (default: the eligible pool)")
    p.add_argument("--name", metavar="VERSION", help="write the plan as this dataset version")
    _pool(p)
    _dry(p)
    add_json_flag(p)
    p.set_defaults(func=h["cmd_rebalance"])

    p = sub.add_parser(
        "oversample",
        parents=[common],
        formatter_class=RAW,
        help="weight/duplicate slices or ask the teacher",
        epilog="examples:\n  distill oversample --from prod-v1 --factor security=3 --name prod-v2\n"
        "  distill oversample --from prod-v1 --factor security=3 --mode duplicate --cap 4 --dry-run\n"
        "  distill oversample --request security=200 --reason 'eval: security below bar'\n"
        "  distill oversample --flagged --request-each 100 --reason 'eval 3'   # slices below their bar",
    )
    p.add_argument("--from", dest="base", metavar="VERSION")
    p.add_argument("--factor", action="append", metavar="SLICE=X[,...]")
    p.add_argument("--mode", choices=["weight", "duplicate"], default="weight")
    p.add_argument("--cap", type=float, default=5.0)
    p.add_argument("--name", metavar="VERSION")
    p.add_argument("--request", action="append", metavar="SLICE=N[,...]", help="queue N new teacher inputs")
    p.add_argument("--reason", default="oversample")
    p.add_argument("--flagged", action="store_true", help="the slices that failed their bar in the latest evaluation")
    p.add_argument("--eval", type=int, metavar="ID", help="with --flagged: this evaluation instead of the latest")
    p.add_argument("--factor-each", type=float, metavar="X", help="with --flagged: factor for each flagged slice")
    p.add_argument("--request-each", type=int, metavar="N", help="with --flagged: new inputs for each flagged slice")
    _dry(p)
    add_json_flag(p)
    p.set_defaults(func=h["cmd_oversample"])

    p = sub.add_parser(
        "versions",
        parents=[common],
        formatter_class=RAW,
        help="dataset versions",
        epilog="examples:\n  distill versions\n  distill versions show prod-v1\n"
        "  distill versions snapshot all-v1   # the whole eligible pool, weight 1",
    )
    add_json_flag(p)
    p.set_defaults(func=h["cmd_versions"], action=None)
    vs = p.add_subparsers(dest="action", metavar="ACTION")
    s = vs.add_parser("show", parents=[common], help="one version: shares and recipe")
    s.add_argument("name")
    add_json_flag(s)
    s = vs.add_parser("snapshot", parents=[common], help="version of the eligible pool as it is")
    s.add_argument("name")
    _pool(s)
    _dry(s)
    add_json_flag(s)
    s = vs.add_parser("list", parents=[common], help="every version")
    add_json_flag(s)

    p = sub.add_parser(
        "export",
        parents=[common],
        formatter_class=RAW,
        help="export a dataset version",
        epilog="examples:\n  distill export prod-v1                       # OpenAI fine-tuning JSONL\n"
        "  distill export prod-v1 --format parquet --out exports/\n"
        "  distill export prod-v1 --format jsonl --include-notes\n"
        "  distill export prod-v1 --format training     # the Parquet file `train` reads",
    )
    p.add_argument("version")
    p.add_argument("--format", choices=["openai", "jsonl", "parquet", "training"], default="openai")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder (file for --format training); default <workspace>.artifacts/exports/VERSION/FORMAT",
    )
    p.add_argument("--include-notes", action="store_true", help="add review status/reason/reviewer (jsonl, parquet)")
    p.add_argument("--include-metadata", action="store_true", help="add record metadata (jsonl, parquet)")
    _dry(p)
    add_json_flag(p)
    p.set_defaults(func=h["cmd_export"])

    from distill.commands.curate_clean import register_clean

    register_clean(sub, common)
