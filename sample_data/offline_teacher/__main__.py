"""``python -m sample_data.offline_teacher --port N``: serve the offline sample teacher in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from sample_data.offline_teacher.server import DEFAULT_LATENCY_MS, MODEL, serve


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted."""
    p = argparse.ArgumentParser(
        prog="python -m sample_data.offline_teacher",
        description="An OpenAI-compatible teacher for the bundled sample: triage answers, new tickets and grades "
        "from the sample generator's templates. No API key; any key is accepted.",
        epilog="example:\n  python -m sample_data.offline_teacher --port 8741\n"
        "  distill teachers add offline --base-url http://127.0.0.1:8741/v1 --model offline-triage-1 ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS,
                   help=f"delay before each answer (default {DEFAULT_LATENCY_MS:g})")  # fmt: skip
    p.add_argument("--model", default=MODEL, help=f"model name served (default {MODEL})")
    p.add_argument("--state-file", type=Path, help="write pid, port and base URL here once listening")
    args = p.parse_args(argv)
    try:
        serve(args.port, host=args.host, latency_ms=args.latency_ms, model=args.model, state_file=args.state_file)
    except OSError as exc:
        p.exit(1, f"error: offline teacher on {args.host}:{args.port}: {exc.strerror or exc}\n")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
