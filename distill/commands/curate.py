"""``distill slices | rebalance | oversample | versions | export``: shape a training set into dataset versions.

Every operation previews first; ``--dry-run`` prints the preview and changes nothing.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from curation.errors import UserError
from distill.common import open_workspace
from distill.output import CliProgress, print_json, print_table

RAW = argparse.RawDescriptionHelpFormatter


def parse_pairs(items: list[str] | None, cast: type = float) -> dict[str, Any]:
    """``["a=0.2", "b=0.3"]`` or ``["a=0.2,b=0.3"]`` -> {"a": 0.2, "b": 0.3}."""
    out: dict[str, Any] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, val = part.rpartition("=")
            if not sep or not key:
                raise UserError(f"expected SLICE=VALUE, got {part!r}")
            try:
                out[key.strip()] = cast(val)
            except ValueError:
                raise UserError(f"bad value in {part!r}") from None
    return out


def resolve_split(ws, args: argparse.Namespace) -> str | None:
    """``--split NAME`` / ``--no-split``; by default the 'heldout' split when one was frozen."""
    if getattr(args, "no_split", False):
        return None
    name = getattr(args, "split", None)
    from curation.splits import DEFAULT_SPLIT, split_exists

    if name:
        if not split_exists(ws, name):
            raise UserError(f"no split named {name!r} (see `distill split list`)")
        return name
    return DEFAULT_SPLIT if split_exists(ws, DEFAULT_SPLIT) else None


def resolve_slicing(ws, args: argparse.Namespace) -> str | None:
    from curation.pool import active_slicing

    return getattr(args, "slicing", None) or active_slicing(ws)


def add_pool_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--slicing", metavar="NAME", help="slicing to use (default: the one chosen by `distill slices use`)")
    p.add_argument("--split", metavar="NAME", help="held-out split to respect (default: 'heldout' if frozen)")
    p.add_argument("--no-split", action="store_true", help="ignore held-out splits (no held-out side)")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# -- slices ------------------------------------------------------------------------------------------------


def cmd_slices(args: argparse.Namespace) -> int:
    from curation import slices as sl

    with open_workspace(args) as ws:
        action = args.action or "show"
        if action == "list":
            rows = sl.list_slicings(ws)
            if args.json:
                print_json(rows)
            else:
                print_table(
                    ["name", "kind", "slices", "active", "spec"],
                    [[r["name"], r["kind"], r["n_slices"], "*" if r["active"] else "", r["spec"]] for r in rows],
                )
            return 0
        if action == "use":
            sl.use_slicing(ws, None if args.name == "-" else args.name)
            print("active slicing: " + (args.name if args.name != "-" else "records' own slice"))
            return 0
        if action == "define":
            return _define(ws, args, sl)
        slicing = resolve_slicing(ws, args)
        shares = sl.slice_shares(ws, slicing)
        if args.json:
            print_json({"slicing": slicing, "slices": shares})
        else:
            print_table(
                ["slice", "records", "share", "with response"],
                [[s.slice, s.n, _pct(s.share), s.n_with_response] for s in shares],
                title="slicing: " + (slicing or "records' own slice"),
            )
    return 0


def _define(ws, args: argparse.Namespace, sl) -> int:
    if args.clusters:
        prog = CliProgress(not args.json)
        cs = sl.cluster_prompts(ws, args.name, args.clusters, seed=args.seed, model=args.model, progress=prog)
        prog.close()
        preview = sorted(zip(cs.names, cs.sizes, strict=True), key=lambda x: -x[1])
        if not args.dry_run:
            sl.store_clusters(ws, cs)
    else:
        expr = sl.field_expr(args.field) if args.field else args.sql
        if not expr:
            raise UserError("give --field PATH, --sql EXPR or --clusters K")
        preview = sl.preview_expr(ws, expr)
        if not args.dry_run:
            if args.field:
                sl.define_by_field(ws, args.name, args.field)
            else:
                sl.define_by_expr(ws, args.name, expr)
    total = sum(n for _, n in preview) or 1
    if args.json:
        print_json({"name": args.name, "dry_run": args.dry_run, "slices": [{"slice": s, "n": n} for s, n in preview]})
    else:
        print_table(
            ["slice", "records", "share"],
            [[s, n, _pct(n / total)] for s, n in preview],
            title=f"slicing {args.name}" + (" (dry run: nothing stored)" if args.dry_run else " (stored)"),
        )
    return 0


# -- rebalance ---------------------------------------------------------------------------------------------


def _print_plan_rows(rows) -> None:
    print_table(
        ["slice", "before", "before %", "target %", "after", "after %", "action"],
        [
            [r.slice, r.before_n, _pct(r.before_share), _pct(r.target_share), r.after_n, _pct(r.after_share), r.action]
            for r in rows
        ],
    )


def cmd_rebalance(args: argparse.Namespace) -> int:
    from curation.rebalance import Target, apply_rebalance, plan_rebalance

    with open_workspace(args) as ws:
        kind = {"production": "production", "shares": "shares", "min-count": "min_count"}[args.to]
        target = Target(
            kind,
            shares=parse_pairs(args.shares),
            min_count=args.min_count or 0,
            since=datetime.fromisoformat(args.since) if args.since else None,
            until=datetime.fromisoformat(args.until) if args.until else None,
        )
        if kind == "shares" and not target.shares:
            raise UserError("--to shares needs --shares SLICE=SHARE,...")
        if kind == "min_count" and not args.min_count:
            raise UserError("--to min-count needs --min-count N")
        plan = plan_rebalance(
            ws,
            target,
            mode=args.mode,
            max_factor=args.max_factor,
            seed=args.seed,
            size=args.size,
            slicing=resolve_slicing(ws, args),
            split=resolve_split(ws, args),
        )
        apply = bool(args.name) and not args.dry_run
        info = apply_rebalance(ws, plan, args.name) if apply else None
        if args.json:
            print_json(
                {
                    "rows": plan.rows,
                    "tv_before": plan.tv_before,
                    "tv_after": plan.tv_after,
                    "excluded": plan.pool.excluded,
                    "warnings": plan.warnings,
                    "version": info,
                }
            )
            return 0
        _print_plan_rows(plan.rows)
        print(f"distance to target (total variation): before {plan.tv_before:.3f}, after {plan.tv_after:.3f}")
        print(
            f"held-out: {len(plan.pool.heldout)} records (split {plan.pool.split or 'none'}); excluded: "
            f"{plan.pool.excluded or 'none'}"
            + (" (no_response: those need the teacher first)" if plan.pool.excluded.get("no_response") else "")
        )
        for w in plan.warnings:
            print(f"warning: {w}")
        if info:
            print(f"wrote dataset version {info.name}: {info.n_train} train, {info.n_heldout} held-out")
        else:
            print("dry run: nothing written" + ("" if args.name else " (give --name VERSION to write a version)"))
    return 0


# -- oversample --------------------------------------------------------------------------------------------


def cmd_oversample(args: argparse.Namespace) -> int:
    from curation.oversample import apply_oversample, plan_oversample, request_inputs
    from train.store import failing_slices

    with open_workspace(args) as ws:
        out: dict[str, Any] = {"dry_run": args.dry_run}
        if args.flagged:
            flagged = failing_slices(ws, args.eval)  # train's verdict, handed to curation as plain slice names
            if not flagged:
                raise UserError("no slice failed its bar in the evaluation (or no evaluation yet)")
            out["flagged"] = flagged
            if args.factor_each:
                args.factor = [*(args.factor or []), ",".join(f"{s}={args.factor_each}" for s in flagged)]
            if args.request_each:
                args.request = [*(args.request or []), ",".join(f"{s}={args.request_each}" for s in flagged)]
            if not args.json:
                print(f"slices below their bar: {', '.join(flagged)}")
        if args.request:
            wanted = parse_pairs(args.request, int)
            ids = request_inputs(ws, wanted, reason=args.reason, dry_run=args.dry_run)
            out["requests"] = [{"slice": s, "n": n} for s, n in wanted.items()]
            out["request_ids"] = ids
            if not args.json:
                verb = "would queue" if args.dry_run else "queued"
                for s, n in wanted.items():
                    print(f"{verb} a request for {n} new teacher inputs in slice {s!r} ({args.reason})")
        if args.factor:
            if not args.base:
                raise UserError("--factor needs --from VERSION")
            plan = plan_oversample(ws, args.base, parse_pairs(args.factor), mode=args.mode, cap=args.cap)
            info = apply_oversample(ws, plan, args.name) if args.name and not args.dry_run else None
            out.update(before=plan.before, after=plan.after, version=info)
            if not args.json:
                print_table(
                    ["slice", "records", "share before", "share after"],
                    [
                        [s, plan.counts.get(s, 0), _pct(plan.before.get(s, 0)), _pct(plan.after.get(s, 0))]
                        for s in plan.after
                    ],
                )
                print(f"wrote dataset version {info.name}" if info else "dry run: nothing written (give --name)")
        if not args.request and not args.factor:
            raise UserError(
                "give --factor SLICE=X (with --from VERSION) and/or --request SLICE=N "
                "(or --flagged with --factor-each X / --request-each N)"
            )
        if args.json:
            print_json(out)
    return 0


# -- versions and export -----------------------------------------------------------------------------------


def cmd_versions(args: argparse.Namespace) -> int:
    from curation import datasets as ds
    from curation.rebalance import snapshot_version

    with open_workspace(args) as ws:
        if args.action == "snapshot":
            if args.dry_run:
                from curation.pool import load_pool

                pool = load_pool(ws, slicing=resolve_slicing(ws, args), split=resolve_split(ws, args))
                print(
                    f"would write {args.name}: {len(pool.train)} train, {len(pool.heldout)} held-out; "
                    f"excluded {pool.excluded or 'none'}"
                )
                return 0
            info = snapshot_version(ws, args.name, slicing=resolve_slicing(ws, args), split=resolve_split(ws, args))
            print_json(info) if args.json else print(
                f"wrote {info.name}: {info.n_train} train, {info.n_heldout} held-out"
            )
            return 0
        if args.action == "show":
            info = ds.get_version(ws, args.name)
            if args.json:
                print_json(info)
            else:
                print(
                    f"{info.name}  created {info.created_at:%Y-%m-%d %H:%M}  split {info.split or '-'}  "
                    f"{info.n_train} train / {info.n_heldout} held-out"
                )
                print_table(["slice", "weighted share"], [[s, _pct(v)] for s, v in info.shares.items()])
                print("recipe:\n" + json.dumps(info.recipe, indent=2))
            return 0
        vs = ds.list_versions(ws)
        if args.json:
            print_json(vs)
        else:
            print_table(
                ["name", "created", "split", "train", "held-out", "ops"],
                [
                    [v.name, v.created_at, v.split, v.n_train, v.n_heldout, " > ".join(s["op"] for s in v.recipe)]
                    for v in vs
                ],
            )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from curation.datasets import export_training_file, get_version
    from curation.export import export_version

    with open_workspace(args) as ws:
        info = get_version(ws, args.version)
        if args.dry_run:
            print(
                f"would export {info.name} as {args.format}: {info.n_train} train + {info.n_heldout} held-out records "
                f"to {args.out or ws.artifacts_dir / 'exports' / info.name / args.format}"
            )
            return 0
        if args.format == "training":
            out = args.out or str(ws.artifacts_dir / "exports" / info.name / f"{info.name}.training.parquet")
            path = export_training_file(ws, info.name, out)
            print_json({"file": str(path)}) if args.json else print(f"wrote {path}")
            return 0
        res = export_version(
            ws,
            info.name,
            args.out,
            fmt=args.format,
            include_notes=args.include_notes,
            include_metadata=args.include_metadata,
        )
        if args.json:
            print_json(res)
        else:
            for side, path in res.files.items():
                print(f"{side}: {res.lines[side]} lines -> {path}")
            for w in res.warnings:
                print(f"warning: {w}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add slices, rebalance, oversample, versions and export."""
    from distill.commands.curate_args import register_curate

    register_curate(sub, common, globals())
