"""What sharing the workspace through its service costs: per statement, per studio query, and the service's memory.

On the bench workspace (``tui_bench.py`` makes it), the same statements run in-process and through the service:
``SELECT 1`` (the round trip alone), the records screen's count and first page, a slice-filtered count and a text
search (``curation.browse``), in turn. Median wall and mean CPU (this process plus, served, the service's) per call,
the difference being the sharing's cost; then the service's resident memory (now and its peak).

    nice python bench/service_bench.py                       # bench/out/tui_1m.duckdb
    nice python bench/service_bench.py --workspace W --repeats 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fresh_start
from curation.browse import ALL_RECORDS, RecordFilter, count_records, fetch_page
from curation.workspace import Workspace


def _calls(ws: Workspace) -> dict[str, Callable[[], Any]]:
    sliced = RecordFilter(slices=("area_3",))
    text = RecordFilter(text="ticket 4242 about")
    return {
        "SELECT 1": lambda: ws.scalar("SELECT 1"),
        "count all": lambda: count_records(ws, ALL_RECORDS),
        "first page": lambda: fetch_page(ws, ALL_RECORDS, "import", limit=50),
        "slice count": lambda: count_records(ws, sliced),
        "text search": lambda: count_records(ws, text),
    }


def _service_cpu(ws: Workspace) -> float:
    return fresh_start.cpu_seconds(ws._backend.service_pid) if ws.served else 0.0  # type: ignore[union-attr]


def measure(ws: Workspace, repeats: int) -> dict[str, tuple[list[float], float]]:
    """Per call: (wall seconds of each call, mean CPU seconds per call of this process and the service).

    CPU is summed over all the calls: the service's comes from /proc in clock ticks (10 ms), too coarse for one call.
    """
    out = {}
    for name, call in _calls(ws).items():
        call()  # warm: caches, the search index, the statement's parse in the service
        walls = []
        c = time.process_time() + _service_cpu(ws)
        for _ in range(repeats):
            t = time.perf_counter()
            call()
            walls.append(time.perf_counter() - t)
        out[name] = (walls, (time.process_time() + _service_cpu(ws) - c) / repeats)
    return out


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, default=Path(__file__).parent / "out" / "tui_1m.duckdb")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not args.workspace.exists():
        raise SystemExit(f"no workspace at {args.workspace} (run bench/tui_bench.py first)")
    runs: dict[bool, list[dict[str, tuple[list[float], float]]]] = {False: [], True: []}
    for _ in range(args.rounds):  # in turn: a machine whose load changes meanwhile weighs on both alike
        for served in (False, True):
            fresh_start.stop_service(args.workspace)
            with Workspace.open(args.workspace, service=served) as ws:
                n = ws.scalar("SELECT count(*) FROM records")
                runs[served].append(measure(ws, args.repeats))
                if served:
                    rss, peak = memory_kib(ws._backend.service_pid)  # type: ignore[union-attr]
    fresh_start.stop_service(args.workspace)
    print(f"{n:,} records; {args.rounds} rounds of {args.repeats} calls each way; wall: median, CPU: mean per call of "
          "this process + the service")  # fmt: skip
    print(
        f"{'call':<13}{'in-process':>12}{'served':>10}{'cost':>10}{'CPU in-proc':>13}{'CPU served':>12}{'CPU cost':>10}"
    )
    for name in runs[False][0]:
        wall, s_wall = ([w for r in runs[m] for w in r[name][0]] for m in (False, True))
        cpu, s_cpu = (statistics.mean(r[name][1] for r in runs[m]) for m in (False, True))
        med, s_med = statistics.median(wall), statistics.median(s_wall)
        print(f"{name:<13}{med * 1e3:>10.2f}ms{s_med * 1e3:>8.2f}ms{(s_med - med) * 1e3:>8.2f}ms"
              f"{cpu * 1e3:>11.2f}ms{s_cpu * 1e3:>10.2f}ms{(s_cpu - cpu) * 1e3:>8.2f}ms")  # fmt: skip
    print(f"service memory after these calls: {rss / 1024:.0f} MiB resident, peak {peak / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
