"""The gateway's cost and its micro-batching gain, against baselines run in the same process.

    nice python bench/serve_bench.py [--tiny] [--model smollm2] [--latency-requests 16] [--clients 8]
                                     [--requests 32] [--new-tokens 24] [--items FILE] [--run N -w WORKSPACE]

Latency: the same prompts one at a time, alternately through ``train.generate.generate`` called directly and
through the gateway (``distill serve``'s app on 127.0.0.1, student mode, no teacher, the openai client, the request
logged and fsynced before the answer): the gateway's added latency at p50 (target <= 5%). Throughput: ``--clients``
threads sending ``--requests`` requests in all through the gateway with micro-batching (``--max-batch``) vs the same
gateway with batches of 1 (one request per generate call): requests/s ratio (target >= 3x), beside ``generate``
alone on the same prompts in batches of ``--max-batch`` (the most batching can give on this machine). Prompts are
the sample's production tickets; greedy, ``--new-tokens`` per answer. ``--tiny`` uses the tests' random 2-layer
model instead of SmolLM2-135M (a smoke run). ``--items FILE`` (JSON lines with ``confidence``, ``correct``, optional
``teacher_correct``: an evaluation's held-out items) also prints the routing curve (``train.calibration.routing_curve``);
``--run N -w WORKSPACE`` prints run N's calibration and routing curves per slice on its held-out evaluation (what
``distill serve calibrate N`` fits, nothing stored).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample_prompts(n: int) -> list[list[dict[str, str]]]:
    """The first ``n`` conversations of the bundled sample's production logs (prompt turns only)."""
    out = []
    with gzip.open(ROOT / "sample_data" / "production_logs.jsonl.gz", "rt") as f:
        for line in f:
            out.append(json.loads(line)["request"]["messages"])
            if len(out) == n:
                break
    return out


def p50(xs: list[float]) -> float:
    return statistics.median(xs)


def start_gateway(ws: Any, model_dir: str, max_batch: int, new_tokens: int) -> Any:
    from train.serve.server import start
    from train.serve.settings import ServeConfig, StudentSpec, Thresholds

    cfg = ServeConfig(mode="student", port=0, bar=None, thresholds=Thresholds(default=0.0), max_batch=max_batch,
                      max_tokens=new_tokens)  # fmt: skip
    return start(ws, cfg, StudentSpec(base_model=model_dir, device="cpu"))


def latency(ws: Any, model_dir: str, loaded: tuple, convs: list[list[dict[str, str]]], new_tokens: int) -> dict:
    """Direct ``generate`` vs the gateway, one request at a time, alternating (drift on a shared box hits both)."""
    import openai

    from train.data import prompt_text
    from train.generate import generate

    model, tok, dev = loaded
    g = start_gateway(ws, model_dir, 8, new_tokens)
    try:
        c = openai.OpenAI(base_url=g.base_url, api_key="x", max_retries=0, timeout=600)
        generate(model, tok, [prompt_text(tok, convs[0])], max_new_tokens=2, device=dev)  # warm-up, both sides
        c.chat.completions.create(model="m", messages=convs[0], max_tokens=2)  # type: ignore[arg-type]
        direct, gateway, same = [], [], 0
        for i, conv in enumerate(convs):
            texts = {}
            for side in ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct"):  # neither always second
                t0 = time.perf_counter()
                if side == "direct":
                    texts[side] = generate(model, tok, [prompt_text(tok, conv)], max_new_tokens=new_tokens,
                                           device=dev)[0].text  # fmt: skip
                    direct.append(time.perf_counter() - t0)
                else:
                    r = c.chat.completions.create(model="m", messages=conv, max_tokens=new_tokens)  # type: ignore[arg-type]
                    texts[side] = r.choices[0].message.content or ""
                    gateway.append(time.perf_counter() - t0)
            same += texts["direct"] == texts["gateway"]
        stats = g.gateway.log.stats
    finally:
        g.stop()
    return {"direct_p50": p50(direct), "gateway_p50": p50(gateway), "same_answers": same, "n": len(convs),
            "fsync_ms": 1000 * stats.sync_s / max(stats.syncs, 1)}  # fmt: skip


def drive(g: Any, convs: list[list[dict[str, str]]], clients: int, new_tokens: int, errors: list[str]) -> float:
    """``clients`` threads share ``convs`` through gateway ``g``; the seconds it took."""
    import openai

    todo, lock = list(convs), threading.Lock()

    def worker() -> None:
        c = openai.OpenAI(base_url=g.base_url, api_key="x", max_retries=0, timeout=600)
        while True:
            with lock:
                if not todo:
                    return
                conv = todo.pop()
            try:
                c.chat.completions.create(model="m", messages=conv, max_tokens=new_tokens)  # type: ignore[arg-type]
            except openai.APIError as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def bare(loaded: tuple, convs: list[list[dict[str, str]]], max_batch: int, new_tokens: int) -> float:
    """``generate`` alone on ``convs`` in calls of ``max_batch``, as the gateway makes them; the seconds it took."""
    from train.data import prompt_text
    from train.generate import generate

    model, tok, dev = loaded
    prompts = [prompt_text(tok, c) for c in convs]
    t0 = time.perf_counter()
    for i in range(0, len(prompts), max_batch):
        generate(model, tok, prompts[i : i + max_batch], batch_size=max_batch, max_new_tokens=new_tokens, device=dev)
    return time.perf_counter() - t0


def throughput(tmp: Path, model_dir: str, loaded: tuple, convs: list[list[dict[str, str]]], clients: int,
               max_batch: int, new_tokens: int, rounds: int) -> dict[str, Any]:  # fmt: skip
    """Micro-batched gateway, one-at-a-time gateway and ``generate`` alone, in alternating rounds over the same
    prompts (a shared machine's load drifts over minutes; each side gets its share of every period)."""
    import openai

    from curation.workspace import Workspace

    secs = {"batched": 0.0, "single": 0.0, "bare": 0.0}
    errors: list[str] = []
    with Workspace.open(tmp / "batched.duckdb") as ws_b, Workspace.open(tmp / "single.duckdb") as ws_s:
        gws = {"batched": start_gateway(ws_b, model_dir, max_batch, new_tokens),
               "single": start_gateway(ws_s, model_dir, 1, new_tokens)}  # fmt: skip
        try:
            for g in gws.values():  # warm-up
                openai.OpenAI(base_url=g.base_url, api_key="x").chat.completions.create(
                    model="m", messages=convs[0], max_tokens=2)  # type: ignore[arg-type]  # fmt: skip
            per = -(-len(convs) // rounds)
            for r in range(rounds):
                part = convs[r * per : (r + 1) * per]
                for name, g in gws.items():
                    secs[name] += drive(g, part, clients, new_tokens, errors)
                secs["bare"] += bare(loaded, part, max_batch, new_tokens)
            h = gws["batched"].gateway.metrics.batch_size.collect()[0].samples
            calls = next(s.value for s in h if s.name.endswith("_count")) - 1  # the warm-up's call
            stats = gws["batched"].gateway.log.stats
        finally:
            for g in gws.values():
                g.stop()
    n = len(convs)
    return {**{k: n / v for k, v in secs.items()}, "calls": calls, "errors": len(errors),
            "lines_per_sync": stats.lines / max(stats.syncs, 1)}  # fmt: skip


def print_routing_curve(path: Path) -> None:
    """The routing curve of an evaluation's items: student share vs quality of the mix per threshold."""
    from train.calibration import routing_curve

    items = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    teacher = [float(i["teacher_correct"]) for i in items] if all("teacher_correct" in i for i in items) else None
    curve = routing_curve([float(i["confidence"]) for i in items], [float(i["correct"]) for i in items], teacher)
    print(f"routing curve ({len(items)} items): threshold  student share  quality of the mix")
    for pt in curve:
        print(f"  {pt['threshold']:>9.4f}  {pt['student_share']:>13.1%}  {pt['quality']:>17.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--tiny", action="store_true", help="the tests' tiny random model (a smoke run)")
    ap.add_argument("--latency-requests", type=int, default=16)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=32, help="requests of the throughput runs (each side)")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the throughput sides")
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--only", choices=["latency", "throughput"], help="run one of the two parts")
    ap.add_argument("--items", type=Path, help="JSON lines {confidence, correct[, teacher_correct]}: routing curve")
    ap.add_argument("--run", type=int, help="also the routing curves of this run of -w's workspace on its held-out "
                    "evaluation, as `distill serve calibrate` prints them (nothing stored)")  # fmt: skip
    ap.add_argument("-w", "--workspace", type=Path, help="the workspace of --run (default $DISTILL_WORKSPACE)")
    args = ap.parse_args()
    from curation.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            sys.path.insert(0, str(ROOT / "tests" / "train"))
            from trainfix import build_tiny_model

            model_dir, name = str(build_tiny_model(Path(tmp) / "tiny")), "tiny random Llama"
        else:
            from train.models import resolve_model

            model_dir, name = str(resolve_model(args.model)), args.model  # converted once, outside the timings
        convs = sample_prompts(max(args.latency_requests, args.requests))
        from train.generate import load_for_inference

        loaded = load_for_inference(model_dir, None, "cpu")
        lat = tp = None
        if args.only != "throughput":
            with Workspace.open(Path(tmp) / "bench.duckdb") as ws:
                lat = latency(ws, model_dir, loaded, convs[: args.latency_requests], args.new_tokens)
        if args.only != "latency":
            tp = throughput(Path(tmp), model_dir, loaded, convs[: args.requests], args.clients, args.max_batch,
                            args.new_tokens, args.rounds)  # fmt: skip
    print(f"model {name}, CPU, greedy, {args.new_tokens} new tokens, sample tickets")
    if lat is not None:
        print_latency(lat)
    if tp is not None:
        print_throughput(tp, args)
    if args.items:
        print_routing_curve(args.items)
    if args.run is not None:
        print_run_calibration(args.workspace, args.run)


def print_run_calibration(path: Path | None, run_id: int) -> None:
    """A run's calibration and routing curves on its held-out evaluation (the same fit and words as
    ``distill serve calibrate``; read-only)."""
    from curation.workspace import Workspace, default_workspace_path
    from train.monitor.calibrate import calibrate_run, describe

    with Workspace.open(path or default_workspace_path(), create=False) as ws:
        eval_id, cal = calibrate_run(ws, run_id)
    print("\n".join(describe(run_id, eval_id, cal)))


def print_latency(lat: dict[str, Any]) -> None:
    added = lat["gateway_p50"] / lat["direct_p50"] - 1
    print(f"latency, one request at a time ({lat['n']} requests): direct generate p50 {lat['direct_p50'] * 1000:.1f} "
          f"ms, through the gateway p50 {lat['gateway_p50'] * 1000:.1f} ms (same answer {lat['same_answers']}/"
          f"{lat['n']}; log fsync {lat['fsync_ms']:.2f} ms each)")  # fmt: skip
    print(f"added latency of the gateway at p50: {added:+.1%} (target <= 5%)")


def print_throughput(tp: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"throughput, {args.clients} clients, {args.requests} requests ({args.rounds} alternating rounds): "
          f"micro-batched (max {args.max_batch}) {tp['batched']:.2f} req/s in {tp['calls']:.0f} generate calls, "
          f"{tp['lines_per_sync']:.1f} log lines per fsync; one at a time {tp['single']:.2f} req/s; errors "
          f"{tp['errors']}")  # fmt: skip
    print(f"ratio micro-batched / one at a time: {tp['batched'] / tp['single']:.2f}x (target >= 3x); generate alone "
          f"in calls of {args.max_batch}: {tp['bare']:.2f} req/s = {tp['bare'] / tp['single']:.2f}x (this machine's "
          f"ceiling for the ratio)")  # fmt: skip


if __name__ == "__main__":
    main()
