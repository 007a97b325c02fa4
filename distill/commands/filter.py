"""``distill filter``: confidence and verifier filters over teacher answers (``--dry-run`` stores nothing)."""

from __future__ import annotations

import argparse

from curation.filters import FILTER, filter_spec, list_filter_runs, run_filter
from curation.workspace import Workspace
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.dist_output import add_distribution_flags, print_confidence
from distill.output import CliProgress, print_json, print_table

EXAMPLES = """examples:
  distill filter lowconf --confidence min_logprob --min -2.5 --dry-run   # how many fail?
  distill filter intent-p --confidence answer_prob --field intent --min 0.8 --dry-run
  distill filter valid --verifier '{"type": "json"}' --policy drop
  distill filter labels --verifier-file labels.json --policy review
  distill filter --list

choosing the cut-off: look before deciding
  distill filter --distribution --confidence min_logprob        # histogram, bands, what each --min fails per slice
  distill filter --review-sample 30 --confidence min_logprob    # queue 30 answers per band for review
  (review them in the studio's Review screen: reject or edit a wrong answer, accept a right one)
  distill filter --distribution --confidence min_logprob        # now with the error rate per band
  Pick --min at a band edge where the errors removed outweigh the good examples lost; a band whose error rate is
  close to the rest's is not worth dropping."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("filter", parents=[common], formatter_class=RAW, help="confidence and verifier filters",
                       epilog=EXAMPLES)  # fmt: skip
    FILTER.add_to_parser(p)
    p.add_argument("--list", action="store_true", help="list stored filter runs")
    add_dry_run(p, "preview only; store nothing, queue nothing")
    add_distribution_flags(p, "confidence")
    p.add_argument("--review-sample", type=int, metavar="N",
                   help="queue up to N answers per confidence band for review (tops up an earlier sample), so "
                   "--distribution can show the teacher's error rate per band")  # fmt: skip
    add_json_flag(p)
    p.set_defaults(func=cmd_filter)


def cmd_filter(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        if args.distribution or args.review_sample is not None:
            return _distribution(ws, read_options(FILTER, args, ws), args)
        if args.list or not args.name:
            runs = list_filter_runs(ws)
            print_json(runs) if args.json else print_table(
                ["run", "name", "policy", "checked", "failed", "queued", "spec"],
                [[r["run_id"], r["name"], r["policy"], r["n_checked"], r["n_failed"], r["n_queued"], r["spec"]]
                 for r in runs],
            )  # fmt: skip
            return 0
        v = read_options(FILTER, args, ws)
        spec = filter_spec(v)
        prog = CliProgress(not args.json)
        rep = run_filter(ws, v["name"], spec, v["policy"], apply=not args.dry_run, slicing=v["slicing"], progress=prog)
        prog.close()
    if args.json:
        print_json(rep)
        return 0
    print(f"filter {rep.name} ({rep.policy}): {rep.n_failed:,} of {rep.n_checked:,} fail"
          + (f"; {rep.n_unscored:,} had no logprobs (not judged)" if rep.n_unscored else ""))  # fmt: skip
    if rep.range_hint:
        print(rep.range_hint)
    print_table(["slice", "checked", "failed"], rep.per_slice)
    for s in rep.sample[:5]:
        print(f"  #{s['record_id']} {s['reason']}: {s['prompt'][:70]!r}")
    if rep.policy == "review":
        print(f"{'would queue' if args.dry_run else 'queued'} {rep.n_to_queue:,} for review; "
              f"{rep.n_protected:,} left alone (a human already accepted/rejected them)")  # fmt: skip
    print("dry run: nothing stored" if args.dry_run else f"stored filter run {rep.run_id}")
    return 0


def _distribution(ws: Workspace, v: dict, args: argparse.Namespace) -> int:
    """``--distribution`` / ``--review-sample``: the confidence distribution, and the review sample per band."""
    from curation.confidence_dist import confidence_distribution, queue_review_sample

    metric = v["confidence"] or "mean_logprob"
    prog = CliProgress(not args.json)
    extra = [v["min"]] if v["min"] is not None else None
    dist = confidence_distribution(ws, metric, field=v["field"], slicing=v["slicing"], extra_cutoffs=extra,
                                   progress=prog)  # fmt: skip
    queued = None
    if args.review_sample is not None:
        queued = queue_review_sample(ws, dist, args.review_sample)
        dist = confidence_distribution(ws, metric, field=v["field"], slicing=v["slicing"], extra_cutoffs=extra)
    prog.close()
    if args.json:
        print_json({"metric": dist.metric, "field": dist.field, "n_scored": dist.n_scored,
                    "n_unscored": dist.n_unscored, "histogram": {"(all)": dist.histogram(), **{
                        s: dist.histogram(s) for s in dist.slices}}, "bands": dist.bands,
                    "cutoffs": dist.cutoffs(extra), "queued": queued})  # fmt: skip
        return 0
    if args.distribution:
        print_confidence(dist, v["min"])
    if queued is not None:
        pending = sum(b.sampled - b.reviewed for b in dist.bands)
        if not sum(queued.values()):
            print(f"nothing to add: every band has its sample already ({pending:,} still to review)")
        else:
            print(f"queued {sum(queued.values()):,} answers for review ("
                  + ", ".join(f"{b}: {n}" for b, n in queued.items()) + ")")  # fmt: skip
        if pending:
            print(f"review them in the studio (distill studio, Review screen, status 'needs review'), then: "
                  f"distill filter --distribution --confidence {metric}"
                  + (f" --field {v['field']}" if v["field"] else ""))  # fmt: skip
    return 0
