"""`distill stats`: counts and review progress per slice, counts per batch, and the quarantine."""

from __future__ import annotations

import argparse
from pathlib import Path

from curation.stats import workspace_stats
from distill.common import add_json_flag, open_workspace
from distill.output import print_json, print_table


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "stats",
        parents=[common],
        help="records and reviews per slice, batches, and the quarantine",
        epilog="examples:\n  distill stats\n  distill stats -w shop.duckdb --json | jq .slices",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bad-lines", type=int, default=10, metavar="N", help="quarantined lines to show (default 10)")
    add_json_flag(p)
    p.set_defaults(func=cmd_stats)


def _print_reviews(slices: list[dict]) -> None:
    """Review progress per slice (the same effective slices as above), or one line when nothing is reviewed."""
    if not any(s["unreviewed"] < s["records"] for s in slices):
        print("Reviews: none yet\n")
        return
    print_table(
        ["slice", "accepted", "rejected", "needs review", "edited", "unreviewed"],
        [[s["slice"], s["accepted"], s["rejected"], s["needs_review"], s["edited"], s["unreviewed"]] for s in slices],
        title="Reviews",
    )
    print()


def cmd_stats(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        st = workspace_stats(ws, quarantine_sample=args.bad_lines)
    if args.json:
        print_json(st)
        return 0
    print(f"workspace {st.path} (schema v{st.schema_version})")
    print(f"{st.records:,} records, {st.with_response:,} with a teacher response, {st.synthetic:,} synthetic\n")
    if st.slices:
        # The synthetic share per slice only when there is some (teacher-made inputs; see `distill synth`).
        synth = st.synthetic > 0
        print_table(
            ["slice", "records", "share", "with response", "mean logprob"] + (["synthetic"] if synth else []),
            [
                [s["slice"], s["records"], f"{s['share'] * 100:.1f}%", s["with_response"], s["mean_logprob"]]
                + ([f"{s['synthetic']:,} ({s['synthetic'] / s['records'] * 100:.0f}%)"] if synth else [])
                for s in st.slices
            ],
            title="Slices" + (f" (slicing {st.slicing})" if st.slicing else ""),
        )
        print()
        _print_reviews(st.slices)
    if len(st.teachers) > 1:
        print_table(
            ["teacher", "records answered"],
            [[t["teacher"], t["records"]] for t in st.teachers],
            title="Teachers (side by side in the studio's record detail and review; `distill versions teachers`)",
        )
        print()
        if st.reviewers:
            print_table(["slice", "reviewer", "assigned", "done", "left", "accepted", "rejected"],
                        [[r["slice"], r["reviewer"], r["assigned"], r["done"], r["left"], r["accepted"], r["rejected"]]
                         for r in st.reviewers], title="Reviews by reviewer (distill review: agreement)")  # fmt: skip
            print()
    if st.batches:
        print_table(
            ["batch", "status", "format", "file", "lines", "imported", "dupes", "quarantined"],
            [
                [
                    b["batch_id"],
                    b["status"],
                    b["format"],
                    Path(b["source_file"]).name,
                    b["n_lines"],
                    b["n_imported"],
                    b["n_duplicates"],
                    b["n_quarantined"],
                ]
                for b in st.batches
            ],
            title="Import batches",
        )
        print()
    print(f"Quarantine: {st.quarantine_total:,} lines")
    if st.quarantine_reasons:
        print_table(["reason", "lines"], [[q["reason"], q["lines"]] for q in st.quarantine_reasons])
        print()
        for q in st.quarantine_sample:
            field = f" {q['field']}:" if q["field"] else ""
            raw = (q["raw"] or "").replace("\n", " ")
            print(f"  {Path(q['source_file']).name}:{q['line_no']}:{field} {q['reason']}  | {raw[:80]}")
    return 0
