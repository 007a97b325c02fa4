"""``distill dedupe``: exact / semantic de-duplication, previewed first (``--dry-run`` stores nothing)."""

from __future__ import annotations

import argparse

from curation.dedupe import DEDUPE, DedupeResult, find_duplicates
from curation.dedupe_runs import apply_dedupe, list_runs
from curation.errors import UserError
from curation.options import omit
from curation.workspace import Workspace
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.dist_output import add_distribution_flags, print_similarity, similarity_json
from distill.output import CliProgress, pct, print_json, print_table
from train.bars import bar_label

CONFLICTS_SHOWN = 10
EXAMPLES = """examples:
  distill dedupe --exact
  distill dedupe --dry-run            # semantic, threshold {threshold:g}: pairs near the threshold, removal per slice
  distill dedupe --threshold 0.93 --force
  distill dedupe --answers agree --label-field intent --dry-run   # near-duplicates with other intents: to review
  distill dedupe --list

choosing the threshold: look before deciding
  distill dedupe --distribution       # histogram per slice, what each threshold removes, example pairs per band
  distill dedupe --distribution --examples 8 --pairs pairs.jsonl   # more examples; every candidate pair to a file
  Read the example pairs band by band from the top: the threshold goes just above the highest band whose pairs
  are different requests; the table says what that threshold removes per slice (a slice losing far more than the
  others is a sign of templated texts, not duplicates)."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("dedupe", parents=[common], formatter_class=RAW, help="exact / semantic de-duplication",
                       epilog=EXAMPLES.format(threshold=DEDUPE.default("threshold")))  # fmt: skip
    DEDUPE.add_to_parser(p)
    p.add_argument("--list", action="store_true", help="list stored dedupe runs")
    add_dry_run(p, "preview only; store nothing")
    add_distribution_flags(p, "nearest-neighbour similarity")
    p.add_argument("--examples", type=int, default=3, metavar="N", help="with --distribution: example pairs per band")
    p.add_argument("--pairs", metavar="FILE", help="with --distribution: write every candidate pair (JSON lines)")
    add_json_flag(p)
    p.set_defaults(func=cmd_dedupe)


def cmd_dedupe(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        if args.list:
            runs = list_runs(ws)
            print_json(runs) if args.json else print_table(
                list(runs[0]) if runs else ["run_id"], [list(r.values()) for r in runs]
            )
            return 0
        v = read_options(DEDUPE, args, ws)
        if args.distribution or args.pairs:
            return _distribution(ws, v, args)
        prog = CliProgress(not args.json)
        res = find_duplicates(ws, **omit(v, "force"), bar_label=bar_label(ws), progress=prog)
        prog.close()
        run_id = None if args.dry_run else apply_dedupe(ws, res, force=v["force"])
    if args.json:
        print_json({"kind": res.kind, "threshold": res.threshold, "method": res.method, "n_records": res.n_records,
                    "n_clusters": len(res.clusters), "n_removed": res.n_removed, "per_slice": res.per_slice,
                    "above": res.above, "below": res.below, "blocked": res.blocked, "kept_apart": res.kept_apart,
                    "apart": res.apart, "answer_rule": res.answer_rule, "conflicts": res.conflicts,
                    "run_id": run_id})  # fmt: skip
        return 0
    print(f"{res.kind} dedupe over {res.n_records:,} records ({res.method}): {len(res.clusters):,} clusters, "
          f"{res.n_removed:,} would be removed")  # fmt: skip
    print_table(
        ["slice", "records", "removed", "rate", "rare", "blocked"],
        [[s.slice, s.n, s.removed, pct(s.rate), "rare" if s.rare else "", "BLOCKED" if s.blocked else ""]
         for s in res.per_slice],
    )  # fmt: skip
    for title, pairs in (("just above the threshold (merged)", res.above), ("just below (kept apart)", res.below)):
        if pairs:
            print(title + ":")
            for pr in pairs:
                print(f"  {pr.similarity:.3f}  #{pr.a} {pr.prompt_a[:60]!r}  ~  #{pr.b} {pr.prompt_b[:60]!r}")
    print_apart_and_conflicts(res, stored=run_id is not None)
    print(f"stored dedupe run {run_id}" if run_id else "dry run: nothing stored")
    return 0


def _distribution(ws: Workspace, v: dict, args: argparse.Namespace) -> int:
    """``--distribution`` / ``--pairs``: the similarity distribution (nothing stored)."""
    from curation.similarity_dist import similarity_distribution, write_pairs

    if v["kind"] != "semantic":
        raise UserError("--distribution shows similarities of the semantic dedupe; leave out --exact")
    prog = CliProgress(not args.json)
    dist = similarity_distribution(ws, model=v["model"], slicing=v["slicing"], split=v["split"],
                                   token_check=v["token_check"], answers=v["answers"], label_field=v["label_field"],
                                   bar_label=bar_label(ws), progress=prog)  # fmt: skip
    n_written = write_pairs(ws, dist, args.pairs, threshold=v["threshold"], progress=prog) if args.pairs else None
    prog.close()
    if args.json:
        print_json(similarity_json(dist, v["threshold"]) | {"pairs_written": n_written})
        return 0
    if args.distribution:
        print_similarity(ws, dist, v["threshold"], max(0, args.examples))
    if args.pairs:
        print(f"wrote {n_written:,} candidate pairs (similarity >= {dist.floor:.2f}) to {args.pairs}")
    print("nothing stored; apply with: distill dedupe --threshold T")
    return 0


def print_apart_and_conflicts(res: DedupeResult, *, stored: bool) -> None:
    """Pairs the token rule kept apart (by reason, with examples) and the label conflicts with every answer."""
    if res.kept_apart:
        why = ", ".join(f"{k} {n:,}" for k, n in sorted(res.kept_apart.items(), key=lambda kv: -kv[1]))
        print(f"kept apart although similar ({sum(res.kept_apart.values()):,} pairs: {why}):")
        for pr in res.apart:
            print(
                f"  {pr.similarity:.3f}  {pr.reason:<14} #{pr.a} {pr.prompt_a[:50]!r}  ~  #{pr.b} {pr.prompt_b[:50]!r}"
            )
    print(f"answers: {res.answer_rule}")
    if not res.conflicts:
        return
    n = sum(len(c.to_review) for c in res.conflicts)
    print(f"label conflicts: {len(res.conflicts):,} clusters of near-duplicate prompts with different answers; "
          f"{n:,} records {'queued' if stored else 'go'} to review" + ("" if stored else " when applied"))  # fmt: skip
    for c in res.conflicts[:CONFLICTS_SHOWN]:
        for a in c.answers:
            ids = ", ".join(f"#{r}" for r in a.record_ids[:4]) + (" ..." if len(a.record_ids) > 4 else "")
            print(f"  {a.label[:30]!r:<32} {ids:<24} {a.prompt[:50]!r}")
        print()
    if len(res.conflicts) > CONFLICTS_SHOWN:
        print(f"  ... {len(res.conflicts) - CONFLICTS_SHOWN:,} more (--json lists them all)")
