"""The handlers of `distill generate`, `distill synth` and `distill batch`: runs that ask a teacher (cancellable with
Ctrl-C), apart from the teacher registry commands in ``distill.commands.teacher``."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from curation.teacher.budget import possibly_billed_text
from curation.teacher.config import (
    get_teacher,
)
from curation.teacher.options import BATCH_SUBMIT, GENERATE, SYNTH, SYNTH_FULFIL, selection_from_options
from distill.common import open_workspace, read_options
from distill.output import CliProgress, print_json, print_table

T = TypeVar("T")


def run_cancellable(fn: Callable[[threading.Event], T]) -> tuple[T, bool]:
    """Run ``fn(cancel)`` in a thread; Ctrl-C sets ``cancel`` and waits for it to wind down."""
    cancel = threading.Event()
    finished = threading.Event()  # not Thread.is_alive(): a Ctrl-C inside join() can make that lie (bpo-45274)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(cancel)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            finished.set()

    th = threading.Thread(target=target, name="distill-teacher", daemon=True)
    th.start()
    interrupted = False
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            interrupted = True
            cancel.set()
            print("\nstopping: waiting for requests in flight (their answers are kept)...", file=sys.stderr)
    if "error" in box:
        raise box["error"]
    return box["value"], interrupted


# Failed requests that never got an HTTP answer: connection refused or dropped, DNS, timeouts.
UNREACHABLE_SQL = "SELECT count(*) FROM teacher_ledger WHERE run_id = ? AND status = 'failed' AND http_status IS NULL"


def cmd_generate(args: argparse.Namespace) -> int:
    from curation.teacher.engine import generate

    bar = CliProgress(enabled=not args.json)
    with open_workspace(args) as ws:
        v = read_options(GENERATE, args, ws)
        res, _ = run_cancellable(
            lambda cancel: generate(
                ws,
                v["teacher"],
                selection_from_options(v),
                budget_usd=v["budget"],
                concurrency=v["concurrency"],
                progress=bar,
                cancel=cancel,
            )
        )
        # A run that ended (done, or stopped because nothing answers) with requests that never got an answer.
        unreachable = int(ws.scalar(UNREACHABLE_SQL, [res.run_id]) or 0) if res.status in ("done", "failed") else 0
        base_url = get_teacher(ws, v["teacher"]).base_url
    bar.close()
    if args.json:
        print_json(res)
    else:
        print(f"run {res.run_id} {res.status}: {res.done} generated, {res.cached} from cache, {res.failed} failed, "
              f"{res.requests} requests, ${res.cost_usd:.4f}{possibly_billed_text(res.possibly_billed_usd)}")  # fmt: skip
        if unreachable:
            # The network or the server went away: an environment fault (exit 1), not a bad answer to a request.
            print(f"error: the teacher at {base_url} could not be reached for {unreachable} "
                  f"request{'s' if unreachable != 1 else ''} ({res.errors[-1] if res.errors else 'no answer'}); "
                  f"the {res.done} answers received are kept: run the same command again to ask for the rest",
                  file=sys.stderr)  # fmt: skip
            return 1
        for e in res.errors:
            print(f"  error: {e}", file=sys.stderr)
        if res.total == 0:
            print(f"nothing to do: every selected record has a response or an answer from {res.teacher} "
                  "(--all also takes records that have a response)", file=sys.stderr)  # fmt: skip
        if res.status == "budget":
            print(BUDGET_NOTE, file=sys.stderr)
        if res.status == "failed":
            print(f"stopped: the teacher refused the request or cannot be reached (check --key-env, --model and "
                  f"--base-url with `distill teachers show {res.teacher}`); fix it and run again",
                  file=sys.stderr)  # fmt: skip
    return 1 if unreachable else {"cancelled": 130, "failed": 1}.get(res.status, 0)


BUDGET_NOTE = "stopped before exceeding the budget; raise --budget and run again to continue"


# -- synthetic inputs ---------------------------------------------------------------------------------------


def cmd_synth_run(args: argparse.Namespace) -> int:
    from curation.teacher.synth import synth_inputs, synthetic_share

    with open_workspace(args) as ws:
        v = read_options(SYNTH, args, ws)
        res = synth_inputs(ws, v["teacher"], v["slice"], v["n"], n_examples=v["examples"], budget_usd=v["budget"])
        share = [s for s in synthetic_share(ws) if s.slice == v["slice"]]
    if args.json:
        print_json({"result": res, "share": share})
        return 0
    print(f"slice {v['slice']}: {res.n_inserted} new synthetic prompts (asked {res.n_requested}, "
          f"{res.n_duplicates} duplicates dropped, {res.n_unparsed} unusable), "
          f"${res.cost_usd:.4f}{possibly_billed_text(res.possibly_billed_usd)}")  # fmt: skip
    if res.status == "budget":
        print(BUDGET_NOTE, file=sys.stderr)
    elif res.n_inserted < res.n_requested:
        print(f"short by {res.n_requested - res.n_inserted}: the teacher's prompts repeated ones already here (or were "
              f"unusable), and the shortfall is asked again at most twice; run the command again for more")  # fmt: skip
    for s in share:
        print(f"synthetic share of {s.slice}: {s.synthetic}/{s.records} ({s.share * 100:.1f}%)")
    if res.n_inserted:
        print(f"next: `distill generate {v['teacher']} --slice {v['slice']}` answers them")
    return 0


def cmd_synth_fulfil(args: argparse.Namespace) -> int:
    from curation.teacher.synth import fulfil_requests

    with open_workspace(args) as ws:
        v = read_options(SYNTH_FULFIL, args, ws)
        results = fulfil_requests(ws, v["teacher"], budget_usd=v["budget"])
    if args.json:
        print_json(results)
        return 0
    if not results:
        print("no open input requests (queue some with `distill oversample --request SLICE=N`)")
    for r in results:
        print(f"request {r.request_id or '-'} ({r.slice}): {r.n_inserted} new prompts (asked {r.n_requested}, "
              f"{r.n_duplicates} duplicates dropped), ${r.cost_usd:.4f}{possibly_billed_text(r.possibly_billed_usd)}")  # fmt: skip
    if results and results[-1].status == "budget":
        print(BUDGET_NOTE + " (the request cut short stays open)", file=sys.stderr)
    if any(r.n_inserted for r in results):
        print(f"next: `distill generate {v['teacher']}` answers them; `distill synth share` shows the synthetic share")
    return 0


def cmd_synth_share(args: argparse.Namespace) -> int:
    from curation.teacher.synth import synthetic_share

    with open_workspace(args) as ws:
        rows = synthetic_share(ws)
    if args.json:
        print_json(rows)
        return 0
    print_table(["slice", "records", "synthetic", "share"],
                [[s.slice, s.records, s.synthetic, f"{s.share * 100:.1f}%"] for s in rows])  # fmt: skip
    return 0


# -- batch --------------------------------------------------------------------------------------------------


def cmd_batch_submit(args: argparse.Namespace) -> int:
    from curation.teacher.batch import submit_batch

    with open_workspace(args) as ws:
        v = read_options(BATCH_SUBMIT, args, ws)
        job = submit_batch(ws, v["teacher"], selection_from_options(v), budget_usd=v["budget"])
    if args.json:
        print_json(job)
    else:
        print(f"job {job.job_id}: {job.n_requests} requests, provider batch {job.provider_batch_id} ({job.status})")
        if job.n_over_budget:
            print(f"{job.n_over_budget} requests left out: the budget covers no more at their worst-case cost; "
                  "submit again with a higher --budget for them", file=sys.stderr)  # fmt: skip
    return 0


def cmd_batch_status(args: argparse.Namespace) -> int:
    from curation.teacher.batch import batch_status, list_batch_jobs

    with open_workspace(args) as ws:
        jobs = [batch_status(ws, args.job)] if args.job is not None else list_batch_jobs(ws)
    if args.json:
        print_json(jobs)
        return 0
    print_table(["job", "teacher", "provider batch", "requests", "status", "attached", "import batch"],
                [[j.job_id, j.teacher, j.provider_batch_id, j.n_requests, j.status, j.n_attached,
                  j.import_batch_id] for j in jobs])  # fmt: skip
    return 0


def cmd_batch_collect(args: argparse.Namespace) -> int:
    from curation.teacher.batch import collect_batch

    with open_workspace(args) as ws:
        job, _ = run_cancellable(
            lambda cancel: collect_batch(ws, args.job, wait=args.wait, poll_s=args.poll, cancel=cancel)
        )
    if args.json:
        print_json(job)
        return 0
    if job.status != "collected":
        print(f"job {job.job_id} is {job.status}; run again later (or with --wait)")
        return 0
    print(f"job {job.job_id} collected: {job.n_attached} answers attached, import batch {job.import_batch_id}")
    return 0
