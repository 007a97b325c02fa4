"""Import throughput: `distill import` vs a bare DuckDB read_json of the same file, in the same run.

    python bench/import_bench.py [-n 1000000] [--repeat 3]

Generates N proxy-log records (format a, with token logprobs) once under bench/out/, then runs, each in a fresh
subprocess (so peak memory is measured per side): the baseline `CREATE TABLE t AS SELECT * FROM read_json(file)`
into a new DuckDB file, and our `import_file` into a new workspace (created, schema and all, inside the timing;
Python modules load before it on both sides). Ours runs twice: in-process (``DISTILL_SERVICE=off``) and through
the workspace service (the default: the child's open starts the service, whose peak RSS is the one reported, and
the import's SQL runs there). Prints rates, the ratios (ours / baseline; target >= 0.8) and peak RSS (target < 2 GiB
for ours at 1M).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"

GEN_SQL = """
COPY (
    SELECT
        {'model': 'gpt-4o', 'temperature': 0, 'logprobs': true, 'top_logprobs': 2,
         'messages': [{'role': 'system', 'content': 'Classify the support ticket. Answer as JSON.'},
                      {'role': 'user', 'content': 'Order #' || i || ': ' || (['my parcel is late', 'I was charged twice',
                          'cannot log in to my account', 'the app crashes on start', 'please cancel my subscription'])[1 + i % 5]
                          || ' since ' || (i % 28 + 1) || ' days, customer ' || hash(i) % 100000}]} AS request,
        {'id': 'chatcmpl-' || i, 'object': 'chat.completion', 'created': 1767225600 + i, 'model': 'gpt-4o-2024-08-06',
         'choices': [{'index': 0, 'finish_reason': 'stop',
             'message': {'role': 'assistant', 'content': '{"intent": "' || (['shipping', 'billing', 'login', 'bug', 'cancel'])[1 + i % 5] || '", "urgency": "high"}'},
             'logprobs': {'content': [
                 {'token': '{"', 'logprob': -0.0001, 'top_logprobs': [{'token': '{"', 'logprob': -0.0001}, {'token': '{', 'logprob': -9.2}]},
                 {'token': 'intent', 'logprob': -0.001, 'top_logprobs': [{'token': 'intent', 'logprob': -0.001}, {'token': 'int', 'logprob': -7.5}]},
                 {'token': '":"', 'logprob': -0.0002, 'top_logprobs': [{'token': '":"', 'logprob': -0.0002}, {'token': '":', 'logprob': -8.1}]},
                 {'token': (['shipping', 'billing', 'login', 'bug', 'cancel'])[1 + i % 5], 'logprob': -((hash(i * 7) % 3000)::INTEGER) / 1000.0,
                  'top_logprobs': [{'token': 'billing', 'logprob': -0.2}, {'token': 'shipping', 'logprob': -1.9}]},
                 {'token': '"}', 'logprob': -0.0003, 'top_logprobs': [{'token': '"}', 'logprob': -0.0003}, {'token': '",', 'logprob': -6.0}]}
             ]}}],
         'usage': {'prompt_tokens': 40 + i % 30, 'completion_tokens': 14, 'total_tokens': 54 + i % 30}} AS response,
        {'product_area': (['shipping', 'billing', 'account', 'technical', 'subscriptions', 'security'])[1 + (hash(i) % 100 < 30)::INT * 1 + (i % 5)],
         'customer_tier': (['free', 'pro', 'enterprise'])[1 + i % 3], 'channel': (['email', 'chat'])[1 + i % 2]} AS metadata,
        strftime(TIMESTAMP '2026-10-01' + INTERVAL (i) SECOND, '%Y-%m-%dT%H:%M:%SZ') AS started_at,
        200 + (i % 900) * 1.5 AS latency_ms
    FROM range({n}) t(i)
) TO '{path}' (FORMAT json)
"""


def generate(n: int) -> Path:
    """Write (once) and return the N-record JSONL file."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"logs_{n}.jsonl"
    if not path.exists():
        t = time.perf_counter()
        con = duckdb.connect()
        con.execute(GEN_SQL.replace("{n}", str(n)).replace("{path}", str(path) + ".tmp"))
        con.close()
        os.replace(str(path) + ".tmp", path)
        print(f"generated {n:,} records, {path.stat().st_size / 1e6:,.0f} MB, in {time.perf_counter() - t:.1f}s")
    return path


def _peak_rss(pid: int) -> int:
    """Peak resident memory of a live process (Linux), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _child(side: str, path: str, workdir: str) -> None:
    served = side == "ours-service"
    if side != "baseline":  # modules load before the clock starts, as duckdb does for the baseline
        sys.path.insert(0, str(ROOT))
        from curation.importing import import_file
        from curation.workspace import Workspace
    t = time.perf_counter()
    if side == "baseline":
        con = duckdb.connect(os.path.join(workdir, "baseline.duckdb"))
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_json('{path}')")
        n = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
        con.close()
    else:
        with Workspace.open(os.path.join(workdir, "ours.duckdb"), service=served) as ws:
            n = import_file(ws, path).n_imported
            service_pid = ws._backend.service_pid if served else 0  # type: ignore[union-attr]
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if side != "baseline":  # untimed: every record must carry its own line number (prompts say "Order #<i>:")
        with Workspace.open(os.path.join(workdir, "ours.duckdb"), service=served) as ws:
            misplaced = ws.scalar(
                "SELECT count(*) FROM records WHERE NOT starts_with(prompt, 'Order #' || (source_line - 1) || ':') "
                "OR record_id <> source_line"
            )
        assert misplaced == 0, f"{misplaced} records have the wrong line number or id"
        if served:  # the service did the work: its memory is the one that counts; then stop it
            rss = max(rss, _peak_rss(service_pid))
            os.kill(service_pid, signal.SIGTERM)
            while Path(f"/proc/{service_pid}").exists():
                time.sleep(0.05)
    print(json.dumps({"side": side, "rows": n, "seconds": seconds, "peak_rss": rss}))


def run_side(side: str, path: Path) -> dict[str, float]:
    workdir = tempfile.mkdtemp(prefix="distill-bench-")
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", side, str(path), workdir], check=True, capture_output=True, text=True
        ).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000, help="records (default 1,000,000)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="alternate runs of each side, best kept (default 3: this kind of machine drifts)",
    )
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    path = generate(args.n)
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for side in ("baseline", "ours", "ours-service"):
            r = run_side(side, path)
            if side not in best or r["seconds"] < best[side]["seconds"]:
                best[side] = r
    b = best["baseline"]
    print(f"records: {args.n:,}   file: {path.stat().st_size / 1e6:,.0f} MB")
    names = {"baseline": "baseline read_json", "ours": "import in-process", "ours-service": "import via service"}
    for side, r in best.items():
        assert r["rows"] == args.n, (side, r)
        print(
            f"{names[side]:>20}: {r['seconds']:6.2f}s  {args.n / r['seconds']:>10,.0f} records/s  peak RSS {r['peak_rss'] / 2**30:.2f} GiB"
        )
    for side in ("ours", "ours-service"):
        o = best[side]
        ratio = b["seconds"] / o["seconds"]
        print(
            f"ratio ({names[side]} / baseline throughput): {ratio:.2f}   target >= 0.80   {'OK' if ratio >= 0.8 else 'BELOW TARGET'}"
        )
        print(
            f"peak memory ({names[side]}): {o['peak_rss'] / 2**30:.2f} GiB   target < 2 GiB   {'OK' if o['peak_rss'] < 2 * 2**30 else 'OVER'}"
        )


if __name__ == "__main__":
    main()
