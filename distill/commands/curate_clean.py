"""``distill dedupe | split | filter``: remove duplicates, freeze a held-out split, filter teacher answers.

Registered by ``distill.commands.curate``; every operation previews, ``--dry-run`` changes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from curation.errors import UserError
from distill.common import add_json_flag, open_workspace
from distill.output import CliProgress, print_json, print_table

RAW = argparse.RawDescriptionHelpFormatter


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Nothing: registered through ``distill.commands.curate``."""


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def cmd_dedupe(args: argparse.Namespace) -> int:
    from curation.dedupe import apply_dedupe, find_duplicates, list_runs
    from distill.commands.curate import resolve_slicing, resolve_split

    with open_workspace(args) as ws:
        if args.list:
            runs = list_runs(ws)
            print_json(runs) if args.json else print_table(
                list(runs[0]) if runs else ["run_id"], [list(r.values()) for r in runs]
            )
            return 0
        prog = CliProgress(not args.json)
        res = find_duplicates(
            ws,
            kind="exact" if args.exact else "semantic",
            threshold=args.threshold,
            model=args.model,
            slicing=resolve_slicing(ws, args),
            split=resolve_split(ws, args),
            rare_share=args.rare_share,
            max_rare_removal=args.max_rare_removal,
            numbers_must_match=not args.any_numbers,
            progress=prog,
        )
        prog.close()
        run_id = None if args.dry_run else apply_dedupe(ws, res, force=args.force)
        if args.json:
            print_json(
                {
                    "kind": res.kind,
                    "threshold": res.threshold,
                    "method": res.method,
                    "n_records": res.n_records,
                    "n_clusters": len(res.clusters),
                    "n_removed": res.n_removed,
                    "per_slice": res.per_slice,
                    "above": res.above,
                    "below": res.below,
                    "blocked": res.blocked,
                    "run_id": run_id,
                }
            )
            return 0
        print(
            f"{res.kind} dedupe over {res.n_records:,} records ({res.method}): {len(res.clusters):,} clusters, "
            f"{res.n_removed:,} would be removed"
        )
        print_table(
            ["slice", "records", "removed", "rate", "rare", "blocked"],
            [
                [s.slice, s.n, s.removed, _pct(s.rate), "rare" if s.rare else "", "BLOCKED" if s.blocked else ""]
                for s in res.per_slice
            ],
        )
        for title, pairs in (("just above the threshold (merged)", res.above), ("just below (kept apart)", res.below)):
            if pairs:
                print(title + ":")
                for p in pairs:
                    print(f"  {p.similarity:.3f}  #{p.a} {p.prompt_a[:60]!r}  ~  #{p.b} {p.prompt_b[:60]!r}")
        print(f"stored dedupe run {run_id}" if run_id else "dry run: nothing stored")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from curation.splits import check_leakage, freeze_split, list_splits, plan_split

    with open_workspace(args) as ws:
        if args.action == "list" or args.action is None:
            rows = list_splits(ws)
            print_json(rows) if args.json else print_table(
                ["name", "train", "held-out", "params", "created"],
                [[r["name"], r["n_train"], r["n_heldout"], r["params"], r["created_at"]] for r in rows],
            )
            return 0
        threshold = None if args.no_semantic else args.threshold
        prog = CliProgress(not args.json)
        if args.action == "check":
            leaks = check_leakage(ws, args.name, threshold=threshold, model=args.model, progress=prog)
            prog.close()
            if args.json:
                print_json({"split": args.name, "leaks": leaks})
            else:
                for lp in leaks[:20]:
                    print(f"  held-out #{lp.heldout_id} ~ train #{lp.train_id}  {lp.kind} {lp.similarity:.3f}")
                print(
                    f"{len(leaks)} leaking pairs" + (" (run `distill dedupe` to drop the train side)" if leaks else "")
                )
            return 1 if leaks else 0
        plan = plan_split(
            ws, name=args.name, share=args.share, seed=args.seed, threshold=threshold, model=args.model, progress=prog
        )
        prog.close()
        if not args.dry_run:
            freeze_split(ws, plan, model=args.model)
        if args.json:
            print_json(
                {
                    "name": plan.name,
                    "n_heldout": len(plan.heldout),
                    "n_train": len(plan.train),
                    "per_slice": plan.per_slice,
                    "dry_run": args.dry_run,
                }
            )
        else:
            print_table(
                ["slice", "eligible", "held-out", "share"],
                [[s, n, h, _pct(h / n if n else 0)] for s, n, h in plan.per_slice],
            )
            print(
                f"{len(plan.heldout)} held-out / {len(plan.train)} train; {plan.n_clusters_joined} near-duplicate "
                "clusters kept on one side"
            )
            print("dry run: nothing stored" if args.dry_run else f"split {plan.name!r} frozen")
    return 0


def _filter_spec(args: argparse.Namespace) -> dict:
    if args.confidence:
        if args.min is None:
            raise UserError("--confidence needs --min X")
        return {"kind": "confidence", "metric": args.confidence, "min": args.min, "field": args.field}
    text = args.verifier
    if args.verifier_file:
        text = Path(args.verifier_file).read_text(encoding="utf-8")
    if not text:
        raise UserError("give --confidence METRIC --min X, --verifier JSON or --verifier-file PATH")
    try:
        return {"kind": "verifier", "verifier": json.loads(text)}
    except ValueError as exc:
        raise UserError(f"verifier spec is not JSON: {exc}") from None


def cmd_filter(args: argparse.Namespace) -> int:
    from curation.filters import list_filter_runs, run_filter
    from distill.commands.curate import resolve_slicing

    with open_workspace(args) as ws:
        if args.list or not args.name:
            runs = list_filter_runs(ws)
            print_json(runs) if args.json else print_table(
                ["run", "name", "policy", "checked", "failed", "queued", "spec"],
                [
                    [r["run_id"], r["name"], r["policy"], r["n_checked"], r["n_failed"], r["n_queued"], r["spec"]]
                    for r in runs
                ],
            )
            return 0
        prog = CliProgress(not args.json)
        rep = run_filter(
            ws,
            args.name,
            _filter_spec(args),
            args.policy,
            apply=not args.dry_run,
            slicing=resolve_slicing(ws, args),
            progress=prog,
        )
        prog.close()
        if args.json:
            print_json(rep)
            return 0
        print(
            f"filter {rep.name} ({rep.policy}): {rep.n_failed:,} of {rep.n_checked:,} fail"
            + (f"; {rep.n_unscored:,} had no logprobs (not judged)" if rep.n_unscored else "")
        )
        print_table(["slice", "checked", "failed"], rep.per_slice)
        for s in rep.sample[:5]:
            print(f"  #{s['record_id']} {s['reason']}: {s['prompt'][:70]!r}")
        if rep.policy == "review":
            print(
                f"{'would queue' if args.dry_run else 'queued'} {rep.n_to_queue:,} for review; "
                f"{rep.n_protected:,} left alone (a human already accepted/rejected them)"
            )
        print("dry run: nothing stored" if args.dry_run else f"stored filter run {rep.run_id}")
    return 0


def register_clean(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add dedupe, split and filter."""
    from distill.commands.curate import add_pool_flags

    p = sub.add_parser(
        "dedupe",
        parents=[common],
        formatter_class=RAW,
        help="exact / semantic de-duplication",
        epilog="examples:\n  distill dedupe --exact\n  distill dedupe --dry-run            # semantic, "
        "threshold 0.85: pairs near the threshold, removal per slice\n"
        "  distill dedupe --threshold 0.93 --force\n  distill dedupe --list",
    )
    p.add_argument("--exact", action="store_true", help="normalised text hash only (no embeddings)")
    p.add_argument("--threshold", type=float, default=0.85, help="cosine similarity for near-duplicates (default 0.85)")
    p.add_argument("--model", metavar="PATH", help="sentence-transformers model folder (default all-MiniLM-L6-v2)")
    p.add_argument("--rare-share", type=float, default=0.05, help="a slice below this share is rare (default 0.05)")
    p.add_argument("--max-rare-removal", type=float, default=0.3, help="refuse to remove more of a rare slice")
    p.add_argument("--force", action="store_true", help="apply even when a rare slice would lose too much")
    p.add_argument(
        "--any-numbers",
        action="store_true",
        help="merge near-duplicates even when they mention different numbers (order ids, amounts)",
    )
    p.add_argument("--list", action="store_true", help="list stored dedupe runs")
    add_pool_flags(p)
    p.add_argument("--dry-run", action="store_true", help="preview only; store nothing")
    add_json_flag(p)
    p.set_defaults(func=cmd_dedupe)

    p = sub.add_parser(
        "split",
        parents=[common],
        formatter_class=RAW,
        help="frozen held-out split; leakage check",
        epilog="examples:\n  distill split make --share 0.1 --seed 0 --dry-run\n"
        "  distill split make                 # freezes split 'heldout'\n"
        "  distill split check                # exit 1 when held-out leaks into train\n"
        "  distill split list",
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_split, action=None)
    sp = p.add_subparsers(dest="action", metavar="ACTION")
    for action in ("make", "check", "list"):
        a = sp.add_parser(
            action,
            parents=[common],
            help={
                "make": "plan and freeze a stratified held-out split",
                "check": "held-out/train near-duplicate pairs",
                "list": "stored splits",
            }[action],
        )
        add_json_flag(a)
        if action == "list":
            continue
        a.add_argument("--name", default="heldout")
        a.add_argument("--threshold", type=float, default=0.85, help="near-duplicate cosine (default 0.85)")
        a.add_argument("--no-semantic", action="store_true", help="exact matches only (no embeddings)")
        a.add_argument("--model", metavar="PATH", help="sentence-transformers model folder")
        if action == "make":
            a.add_argument("--share", type=float, default=0.1, help="held-out share per slice (default 0.1)")
            a.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
            a.add_argument("--dry-run", action="store_true", help="preview only; freeze nothing")

    p = sub.add_parser(
        "filter",
        parents=[common],
        formatter_class=RAW,
        help="confidence and verifier filters",
        epilog="examples:\n  distill filter lowconf --confidence min_logprob --min -2.5 --dry-run   # how many fail?\n"
        "  distill filter intent-p --confidence answer_prob --field intent --min 0.8 --dry-run\n"
        '  distill filter valid --verifier \'{"type": "json"}\' --policy drop\n'
        "  distill filter labels --verifier-file labels.json --policy review\n  distill filter --list",
    )
    p.add_argument("name", nargs="?", help="filter name (re-running a name replaces its previous result)")
    p.add_argument(
        "--confidence",
        choices=["mean_logprob", "min_logprob", "answer_prob"],
        help="teacher confidence from token logprobs: mean / minimum token logprob, or the probability of the "
        "answer tokens of one labelled JSON --field",
    )
    p.add_argument("--min", type=float, help="fail below this (logprob, or probability for answer_prob)")
    p.add_argument("--field", help="labelled field for answer_prob (e.g. intent)")
    p.add_argument("--verifier", metavar="JSON", help="verifier spec (see curation.verifiers)")
    p.add_argument("--verifier-file", metavar="PATH", help="verifier spec in a JSON file")
    p.add_argument(
        "--policy",
        choices=["drop", "review", "keep"],
        default="review",
        help="failing records: drop (left out of versions), review (queued as needs_review and left out until "
        "accepted; default), keep (only recorded)",
    )
    p.add_argument("--slicing", metavar="NAME", help="slicing for the per-slice counts")
    p.add_argument("--list", action="store_true", help="list stored filter runs")
    p.add_argument("--dry-run", action="store_true", help="preview only; store nothing, queue nothing")
    add_json_flag(p)
    p.set_defaults(func=cmd_filter)
