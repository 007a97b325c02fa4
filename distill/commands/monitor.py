"""``distill monitor``: what the served student does in production (traffic, fallback, agreement, drift, cost,
alarms), once or refreshing; ``--plan``/``--apply``: the re-distill plan an alarm proposes."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

from curation.errors import UserError, WorkspaceLockedError
from curation.workspace import artifacts_dir_for
from distill.common import add_json_flag, open_workspace, workspace_path
from distill.output import CliProgress, print_json, print_table

RAW = argparse.RawDescriptionHelpFormatter
EPILOG = """examples:
  distill monitor                         # the last hour of the gateway's log: per slice, latency, cost, alarms
  distill monitor --since 24h --json      # one JSON document (also for scripts: exit 1 when something alarms)
  distill monitor --since 2026-12-01T09:00 --run 3
  distill monitor --watch                 # refresh every few seconds (drift every minute); Ctrl-C stops
  distill monitor --plan                  # what re-distilling would do, when an alarm calls for it
  distill monitor --apply                 # do it: import the logs as new batches, then the next round
The workspace is read once and closed; while `distill serve` holds it, the monitor uses the snapshot saved by its
last run (`<workspace>.artifacts/serve/monitor/`). Thresholds: `distill bar set --max-drift-auc/--max-fallback-rate/
--min-agreement`. Exit status: 0, or 1 when an alarm is raised (one-shot) or on an error."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from train.monitor.pace import DEFAULT_WINDOW, REFRESH_S

    p = sub.add_parser("monitor", help="watch the served student: traffic, fallback, agreement, drift, cost, alarms",
                       parents=[common], formatter_class=RAW, epilog=EPILOG)  # fmt: skip
    p.add_argument("--since", default=DEFAULT_WINDOW, metavar="WHEN",
                   help=f"a span (30m, 2h, 7d), an ISO time (UTC), or all (default {DEFAULT_WINDOW})")  # fmt: skip
    p.add_argument(
        "--run",
        type=int,
        metavar="N",
        help="the served run (default: the running gateway's, else the newest finished run)",
    )
    p.add_argument("--version", metavar="V", help="the training version to compare with (default: the run's)")
    p.add_argument("--bar", default="default", metavar="NAME", help="quality bar (default: default)")
    p.add_argument("--teacher", metavar="NAME", help="workspace teacher whose prices cost the requests")
    p.add_argument("--logs", metavar="DIR", help="the gateway's log folder (default <workspace>.artifacts/serve/logs)")
    p.add_argument("--watch", nargs="?", type=float, const=REFRESH_S, metavar="SECONDS",
                   help=f"refresh every N seconds (default {REFRESH_S})")  # fmt: skip
    p.add_argument("--no-drift", action="store_true", help="skip the drift test (no embeddings)")
    p.add_argument("--plan", action="store_true", help="print the re-distill plan the alarms propose")
    p.add_argument("--apply", action="store_true", help="run that plan: import the logs, then say the next step")
    add_json_flag(p)
    p.set_defaults(func=cmd_monitor)


def _setup(args: argparse.Namespace, progress: CliProgress) -> Any:
    """Build the setup from the workspace (then close it), or load the snapshot while the gateway holds it."""
    from train.monitor.setup import build_setup, load_snapshot

    try:
        ws = open_workspace(args)
    except WorkspaceLockedError:
        if args.apply:
            raise UserError("the workspace is busy (is `distill serve` running?): stop it, then --apply imports the "
                            "logs") from None  # fmt: skip
        if not args.json:
            print("the workspace is busy (is `distill serve` holding it?): using the monitor's snapshot",
                  file=sys.stderr)  # fmt: skip
        return load_snapshot(artifacts_dir_for(workspace_path(args)))
    with ws:
        return build_setup(ws, run_id=args.run, version=args.version, bar_name=args.bar, teacher=args.teacher,
                           drift=not args.no_drift, progress=progress)  # fmt: skip


def cmd_monitor(args: argparse.Namespace) -> int:
    from train.monitor.monitor import Monitor, parse_window
    from train.serve.settings import logs_dir

    if args.watch is not None and (args.json or args.plan or args.apply):
        raise UserError("--watch shows the report live; --json, --plan and --apply are one-shot")
    if args.watch is not None and args.watch <= 0:
        raise UserError("--watch takes a number of seconds > 0")
    window = parse_window(args.since)
    progress = CliProgress(enabled=not args.json)
    setup = _setup(args, progress)
    logs = logs_dir(artifacts_dir_for(workspace_path(args))) if args.logs is None else _logs(args.logs)
    monitor = Monitor(setup, logs, window)
    if args.watch is not None:
        return _watch(monitor, args)
    monitor.refresh()
    if not args.no_drift:
        monitor.test_drift(progress=progress)
    report = monitor.report()
    plan = _plan(report, logs, args) if args.plan or args.apply else None
    if args.json:
        print_json({**report.to_dict(), **({"plan": plan.to_dict() if plan else None} if args.plan or args.apply
                                           else {})})  # fmt: skip
    else:
        _print(report)
        if args.plan or args.apply:
            print()
            print("\n".join(plan.describe()) if plan else "No alarm: nothing to re-distill.")
    if args.apply and plan is not None:
        _apply(args, plan, progress)
    return 1 if any(a.level == "alarm" for a in report.alarms) else 0


def _logs(text: str) -> Any:
    from pathlib import Path

    p = Path(text)
    if not p.is_dir():
        raise UserError(f"--logs {text}: not a folder")
    return p


def _plan(report: Any, logs: Any, args: argparse.Namespace) -> Any:
    from train.monitor.plan import propose

    try:
        ws = open_workspace(args)
    except WorkspaceLockedError:
        return propose(report, logs, None)
    with ws:
        return propose(report, logs, ws)


def _apply(args: argparse.Namespace, plan: Any, progress: CliProgress) -> None:
    from train.monitor.plan import apply_plan

    with open_workspace(args) as ws:
        result = apply_plan(ws, plan, progress=progress)
    if args.json:
        return
    for r in result.imports:
        print(f"imported {r['file']} as batch {r['batch_id']}: {r['imported']:,} new record(s), "
              f"{r['duplicates']:,} already in the workspace, {r['quarantined']:,} quarantined")  # fmt: skip
    print(f"next: {result.next_step}")


def _print(report: Any) -> None:
    from train.monitor.text import SLICE_HEADERS, alarm_lines, slice_cells, summary_lines

    lines = summary_lines(report)
    print(lines[0])
    print()
    print_table(SLICE_HEADERS, slice_cells(report))
    print()
    print("\n".join(lines[1:]))
    print()
    print("\n".join(alarm_lines(report)))


def _watch(monitor: Any, args: argparse.Namespace) -> int:
    from train.monitor.pace import DRIFT_EVERY_S

    tested = 0.0
    try:
        while True:
            if not args.no_drift and time.monotonic() - tested >= DRIFT_EVERY_S:
                monitor.test_drift()
                tested = time.monotonic()
            monitor.refresh()
            report = monitor.report()
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")  # clear the terminal before redrawing
            print(f"distill monitor  {datetime.now(UTC):%H:%M:%S} UTC  (every {args.watch:g} s; Ctrl-C stops)")
            _print(report)
            sys.stdout.flush()
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
