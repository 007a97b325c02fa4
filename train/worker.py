"""The training subprocess: ``python -m train.worker --config run.json``.

Prints one JSON object per line on stdout (``train.events``, written by ``events.serialise``) and
never opens the workspace (DuckDB allows one writer process; the studio or CLI parent holds it).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from train import events as ev
from train.config import RunConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.worker", description="Train LoRA adapters (JSON lines).")
    parser.add_argument("--config", required=True, help="run.json written by train.launcher")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Library chatter goes to stderr; stdout carries only our JSON lines.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        from train.trainer import train

        cfg = RunConfig.load(args.config)

        def out(event: ev.Event) -> None:
            real_stdout.write(ev.serialise(event) + "\n")
            real_stdout.flush()

        train(cfg, out)
    except Exception as exc:
        failed = ev.RunFailed(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        sys.stderr.write(failed.traceback)  # the run's worker.log
        real_stdout.write(ev.serialise(failed) + "\n")
        real_stdout.flush()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
