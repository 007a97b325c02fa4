"""Drive a running ``distill serve`` with the sample's support tickets through OpenAI's client.

Each request is one of the bundled sample's tickets (``sample_data/production_logs.jsonl.gz``), sent with a user id
(header ``X-User-Id``: the canary bucket, so one user always sees one model) and its slice (header ``X-Slice``). Per
phase it prints who answered (the student or the teacher, by the response's model name), errors and latency;
``distill monitor`` and the studio's Production screen (key 0) show the rest (fallback, agreement, drift, cost).

    python scripts/serve_client.py -n 40                                   # 40 requests, the gateway's mode as is
    python scripts/serve_client.py --modes shadow,canary:0.25,student -n 40   # steer through the three modes
    python scripts/serve_client.py --drift -n 80                           # a drifted stream: each ticket claims
                                                                           # the next slice over (alarms on drift)

The gateway is found through the workspace's state file (``-w``, default ``$DISTILL_WORKSPACE``), which also lets
``--modes`` change the live mode as ``distill serve control`` does; ``--base-url`` talks to any gateway instead (no
``--modes`` then). Exit status 1 when a request failed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.errors import UserError  # noqa: E402
from curation.workspace import artifacts_dir_for, default_workspace_path  # noqa: E402

SAMPLE = ROOT / "sample_data" / "production_logs.jsonl.gz"
SLICE_FIELD = "product_area"  # the sample's slice, in each log line's metadata


def tickets(limit: int | None = None) -> list[tuple[str, list[dict[str, str]]]]:
    """(slice, prompt turns) of the sample's lines in file order (the first ``limit``, else all)."""
    out: list[tuple[str, list[dict[str, str]]]] = []
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(out) >= limit:
                break
            doc = json.loads(line)
            out.append((str(doc["metadata"][SLICE_FIELD]), doc["request"]["messages"]))
    return out


def drifted(pool: list[tuple[str, list[dict[str, str]]]]) -> list[tuple[str, list[dict[str, str]]]]:
    """The same tickets, each claiming the next slice over (sorted names, wrapping): every slice's inputs then come
    from another topic than the one it was trained on."""
    names = sorted({s for s, _ in pool})
    nxt = {s: names[(k + 1) % len(names)] for k, s in enumerate(names)}
    return [(nxt[s], m) for s, m in pool]


def parse_phases(text: str | None) -> list[tuple[str, float | None]]:
    """``shadow,canary:0.25,student`` -> [("shadow", None), ("canary", 0.25), ("student", None)]."""
    if not text:
        return [("", None)]  # one phase in the gateway's current mode
    out: list[tuple[str, float | None]] = []
    for part in text.split(","):
        mode, _, share = part.strip().partition(":")
        if mode not in ("shadow", "canary", "student"):
            raise UserError(f"--modes: {mode!r} is not shadow, canary[:SHARE] or student")
        try:
            out.append((mode, float(share) if share else None))
        except ValueError:
            raise UserError(f"--modes: {part!r}: the share after ':' is a number, e.g. canary:0.25") from None
    return out


def send(client: Any, model: str, max_tokens: int, slice_name: str, messages: list[dict[str, str]], user: str
         ) -> dict[str, Any]:  # fmt: skip
    """One chat completion; who answered, how long it took, or the error."""
    import openai

    t0 = time.perf_counter()
    try:
        r = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=max_tokens,
                                           extra_headers={"X-User-Id": user, "X-Slice": slice_name})  # fmt: skip
    except openai.OpenAIError as exc:
        return {"model": None, "ms": (time.perf_counter() - t0) * 1000, "error": str(exc).splitlines()[0][:200]}
    return {"model": r.model, "ms": (time.perf_counter() - t0) * 1000, "error": None, "user": user}


def phase(client: Any, model: str, batch: list[tuple[str, list[dict[str, str]]]], args: argparse.Namespace
          ) -> tuple[str, int]:  # fmt: skip
    """Send ``batch``, ``--concurrency`` at a time; a line of who answered and the latency, and the error count."""
    users = args.users
    jobs = [(s, m, f"user-{k % users}") for k, (s, m) in enumerate(batch)]
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        got = list(pool.map(lambda j: send(client, model, args.max_tokens, *j), jobs))
    errors = [g["error"] for g in got if g["error"]]
    by_student = sum(1 for g in got if g["model"] == model)  # the teacher's answers carry the teacher's model name
    ok = [g["ms"] for g in got if not g["error"]]
    lat = (f"p50 {statistics.median(ok):,.0f} ms, p95 {statistics.quantiles(ok, n=20)[-1]:,.0f} ms"
           if len(ok) >= 2 else "")  # fmt: skip
    line = (f"{len(got)} requests from {min(users, len(got))} users: the student answered {by_student}, the teacher "
            f"{len(ok) - by_student}; {len(errors)} errors; {lat}")  # fmt: skip
    if errors:
        line += f"\n  first error: {errors[0]}"
    return line, len(errors)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    p.add_argument("-w", "--workspace", help="the served workspace (default $DISTILL_WORKSPACE, else ./distill.duckdb)")
    p.add_argument("--base-url", help="the gateway's URL (default: the workspace's running `distill serve`)")
    p.add_argument("-n", type=int, default=40, help="requests per phase (default 40)")
    p.add_argument("--modes", help="phases, e.g. shadow,canary:0.25,student (default: the live mode, one phase)")
    p.add_argument("--users", type=int, default=20, help="distinct X-User-Id values (default 20)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    p.add_argument("--max-tokens", type=int, default=64, help="answer cap per request (default 64)")
    p.add_argument("--skip", type=int, default=0, help="start at this ticket of the sample (default 0)")
    p.add_argument("--drift", action="store_true", help="each ticket claims the next slice over (a drifted stream)")
    args = p.parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace) -> int:
    import openai

    from train.serve.control import live, read_state

    if min(args.n, args.users, args.concurrency, args.max_tokens) < 1 or args.skip < 0:
        raise UserError("-n, --users, --concurrency and --max-tokens are at least 1, --skip at least 0")
    phases = parse_phases(args.modes)
    artifacts = artifacts_dir_for(args.workspace or default_workspace_path())
    if args.base_url:
        if args.modes:
            raise UserError("--modes steers the workspace's own gateway; leave out --base-url")
        base_url, served = args.base_url.rstrip("/"), None
    else:
        state = read_state(artifacts)
        base_url, served = state["base_url"], state.get("served_model")
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
    try:
        model = served or client.models.list().data[0].id
    except openai.OpenAIError as exc:
        raise UserError(f"{base_url}: no gateway answers ({str(exc).splitlines()[0]})") from None
    pool = tickets(args.skip + len(phases) * args.n)
    if args.drift:
        pool = drifted(pool)
    failed = 0
    for k, (mode, share) in enumerate(phases):
        if mode:
            doc = live(artifacts, {"mode": mode, **({"share": share} if share is not None else {})})
            head = f"mode {doc['mode']}" + (f", share {doc['share']:g}" if doc["mode"] == "canary" else "")
        else:
            doc = live(artifacts, None) if not args.base_url else None
            head = f"mode {doc['mode']}" if doc else base_url
        start = args.skip + k * args.n
        batch = [pool[i % len(pool)] for i in range(start, start + args.n)]
        line, errors = phase(client, model, batch, args)
        print(f"{head}: {line}", flush=True)
        failed += errors
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
