"""``distill serve``: the student behind an OpenAI-compatible gateway (shadow, canary, student with fallback),
``distill serve control`` to change its mode, share or thresholds while it runs, and ``distill serve calibrate RUN``
to fit the thresholds on the run's held-out evaluation."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from curation.errors import UserError
from curation.workspace import artifacts_dir_for, default_workspace_path
from distill.common import add_json_flag, open_workspace
from distill.output import print_json

RAW = argparse.RawDescriptionHelpFormatter
EPILOG = """examples:
  distill serve calibrate 3                               # thresholds per slice from run 3's held-out evaluation
  distill serve 3 --teacher gpt4o                         # run 3's student in shadow: users get the teacher
  distill serve control --mode canary --share 0.05        # 5% of users (by X-User-Id) get the student
  distill serve control --mode canary --share 0.25
  distill serve control --mode student                    # the student answers; unsure or invalid -> teacher
  distill serve control                                   # show the live mode, share and thresholds
  distill serve --adapter runs/3/best --base-model smollm2 --teacher gpt4o --mode student --thresholds th.json
  distill serve --student-url http://gpu:8000/v1 --student-model triage --teacher gpt4o   # vLLM with the LoRA
  distill serve 3 --mode student --port 8100              # no teacher: a served student (distill teachers add --from-run 3)
Clients: OpenAI's client with base_url http://127.0.0.1:PORT/v1; header X-User-Id picks the canary bucket and
X-Slice (or metadata.slice in the body) the slice. Every request is logged to <workspace>.artifacts/serve/logs/,
ready for `distill import`."""

# options that only a starting server takes; ``control`` refuses them
START_ONLY = ("adapter", "base_model", "student_url", "student_model", "student_key_env", "teacher", "host", "port",
              "served_model", "key_header", "slice_header", "slice_field", "bar", "no_bar", "max_batch",
              "batch_wait_ms", "max_tokens", "shadow_wait_ms", "teacher_budget", "log_max_mb", "device", "precision")  # fmt: skip


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from train.serve.settings import MODES, ServeConfig

    d = ServeConfig()
    p = sub.add_parser("serve", help="serve the student (shadow, canary, fallback to the teacher); `serve control`",
                       parents=[common], formatter_class=RAW, epilog=EPILOG)  # fmt: skip
    p.add_argument("target", nargs="?", metavar="RUN_ID|control|calibrate",
                   help="a finished run to serve, `control` to steer the running server, or `calibrate RUN` to fit "
                        "and store the fallback thresholds per slice on the run's held-out evaluation")  # fmt: skip
    p.add_argument("run", nargs="?", metavar="RUN", help=argparse.SUPPRESS)  # calibrate's run
    live = p.add_argument_group("live settings (at start, or changed with `distill serve control`)")
    live.add_argument("--mode", choices=MODES, help=f"who answers (default {d.mode})")
    live.add_argument(
        "--share", type=float, metavar="P", help=f"canary: share of keys for the student (default {d.share})"
    )
    live.add_argument("--threshold", type=float, metavar="C",
                      help=f"fall back when the student's confidence is under C (default {d.thresholds.default})")  # fmt: skip
    live.add_argument("--thresholds", metavar="FILE",
                      help='JSON {"slice": threshold, ...} (optionally "default", "temperature"); else the '
                           "workspace's calibrated ones")  # fmt: skip
    live.add_argument("--temperature", type=float, metavar="T", help="calibration temperature: confidence = "
                      f"exp(mean logprob / T) (default {d.thresholds.temperature})")  # fmt: skip
    st = p.add_argument_group("starting a server")
    st.add_argument("--adapter", metavar="PATH", help="a LoRA adapter folder (with --base-model)")
    st.add_argument("--base-model", metavar="MODEL", help="smollm2, a folder or a hub id")
    st.add_argument("--student-url", metavar="URL", help="an OpenAI-compatible server holding the student (vLLM)")
    st.add_argument("--student-model", metavar="NAME", help="the student's model name there (vLLM --lora-modules)")
    st.add_argument("--student-key-env", metavar="VAR", help="NAME of the variable with that server's key, if any")
    st.add_argument("--teacher", metavar="NAME", help="workspace teacher for shadow, canary and fallback")
    st.add_argument("--host", help=f"address to listen on (default {d.host})")
    st.add_argument("--port", type=int, help=f"port (default {d.port}; 0 = any free one)")
    st.add_argument("--served-model", metavar="NAME", help="model name clients use (default distill-run-N)")
    st.add_argument(
        "--key-header", metavar="H", help=f"header with the caller's key for canary (default {d.key_header})"
    )
    st.add_argument("--slice-header", metavar="H", help=f"header with the request's slice (default {d.slice_header})")
    st.add_argument("--slice-field", metavar="PATH", help=f"body field with the slice (default {d.slice_field})")
    st.add_argument("--bar", metavar="NAME", help=f"quality bar whose checks gate student answers (default {d.bar})")
    st.add_argument("--no-bar", action="store_true", help="no verifier checks, confidence only")
    st.add_argument("--constrain-labels", action="store_true",
                    help="keep a local student's label field inside the bar's label set while it generates")  # fmt: skip
    st.add_argument("--max-batch", type=int, metavar="N", help=f"requests per student call (default {d.max_batch})")
    st.add_argument("--batch-wait-ms", type=float, metavar="MS",
                    help=f"how long a request waits for others to batch with (default {d.batch_wait_ms:g})")  # fmt: skip
    st.add_argument(
        "--max-tokens", type=int, metavar="N", help=f"answer cap when a request gives none (default {d.max_tokens})"
    )
    st.add_argument("--shadow-wait-ms", type=float, metavar="MS",
                    help=f"shadow: wait this long for the student after the teacher (default {d.shadow_wait_ms:g})")  # fmt: skip
    st.add_argument("--teacher-budget", type=float, metavar="USD", help="stop calling the teacher past this spend")
    st.add_argument("--log-max-mb", type=float, metavar="MB",
                    help=f"rotate the request log at this size (default {d.log_max_bytes // 2**20})")  # fmt: skip
    st.add_argument("--device", help="auto | cpu | cuda (default auto)")
    st.add_argument("--precision", help="auto | bf16 | fp32 (default auto)")
    add_json_flag(p)
    p.set_defaults(func=cmd_serve)


def _thresholds_doc(args: argparse.Namespace) -> dict[str, Any] | None:
    """The threshold changes asked for, as the JSON ``Thresholds.from_json`` reads (file first, flags on top)."""
    import json
    from pathlib import Path

    doc: dict[str, Any] = {}
    if args.thresholds:
        try:
            doc = json.loads(Path(args.thresholds).read_text())
        except OSError as exc:
            raise UserError(f"{args.thresholds}: cannot read thresholds: {exc.strerror}") from None
        except ValueError as exc:
            raise UserError(f"{args.thresholds}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise UserError(f"{args.thresholds}: expected a JSON object of slice thresholds")
    if args.threshold is not None:
        doc["default"] = args.threshold
    if args.temperature is not None:
        doc["temperature"] = args.temperature
    return doc or None


def cmd_serve(args: argparse.Namespace) -> int:
    if args.target == "calibrate":
        return cmd_calibrate(args)
    if args.run is not None:
        raise UserError(f"unexpected {args.run!r}: only `distill serve calibrate RUN` takes a second argument")
    if args.target == "control":
        return cmd_control(args)
    run_id = None
    if args.target is not None:
        try:
            run_id = int(args.target)
        except ValueError:
            raise UserError(f"expected a run id or `control`, got {args.target!r}") from None
    return cmd_start(args, run_id)


def cmd_control(args: argparse.Namespace) -> int:
    from train.serve.control import live

    given = [f"--{k.replace('_', '-')}" for k in START_ONLY if getattr(args, k) not in (None, False)]
    if given:
        raise UserError(f"{', '.join(given)} only apply when starting a server; control takes --mode, --share, "
                        "--threshold, --thresholds, --temperature")  # fmt: skip
    changes = {k: v for k, v in (("mode", args.mode), ("share", args.share)) if v is not None}
    th = _thresholds_doc(args)
    if th is not None:
        changes["thresholds"] = th
    doc = live(artifacts_dir_for(args.workspace or default_workspace_path()), changes or None)
    if args.json:
        print_json(doc)
    else:
        t = doc["thresholds"]
        per = ", ".join(f"{k}={v:g}" for k, v in sorted(t["slices"].items()))
        print(f"mode {doc['mode']}  share {doc['share']:g}  threshold {t['default']:g}"
              f"{'  (' + per + ')' if per else ''}  temperature {t['temperature']:g}")  # fmt: skip
    return 0


def cmd_start(args: argparse.Namespace, run_id: int | None) -> int:
    from train.serve.server import serve, workspace_thresholds
    from train.serve.settings import ServeConfig, StudentSpec, Thresholds, logs_dir

    d = ServeConfig()

    def pick(name: str, default: Any) -> Any:
        v = getattr(args, name)
        return default if v is None else v

    spec = StudentSpec(run_id, args.base_model, args.adapter, args.student_url, args.student_model,
                       args.student_key_env, pick("device", "auto"), pick("precision", "auto"))  # fmt: skip
    spec.validate()
    served = (
        args.served_model or (f"distill-run-{run_id}" if run_id is not None else args.student_model) or d.served_model
    )
    cfg = ServeConfig(
        teacher=args.teacher, mode=pick("mode", d.mode), share=pick("share", d.share), host=pick("host", d.host),
        port=pick("port", d.port), served_model=served, key_header=pick("key_header", d.key_header),
        slice_header=pick("slice_header", d.slice_header), slice_field=pick("slice_field", d.slice_field),
        bar=None if args.no_bar else pick("bar", d.bar), max_batch=pick("max_batch", d.max_batch),
        batch_wait_ms=pick("batch_wait_ms", d.batch_wait_ms), max_tokens=pick("max_tokens", d.max_tokens),
        shadow_wait_ms=pick("shadow_wait_ms", d.shadow_wait_ms), teacher_budget_usd=args.teacher_budget,
        log_max_bytes=int(args.log_max_mb * 2**20) if args.log_max_mb is not None else d.log_max_bytes,
        constrain_labels=args.constrain_labels,
    )  # fmt: skip
    cfg.validate()
    with open_workspace(args) as ws:
        th = workspace_thresholds(ws, Thresholds())
        changes = _thresholds_doc(args)
        cfg.thresholds = th if changes is None else Thresholds.from_json(changes, args.thresholds or "flags", th)

        listening: list[dict[str, Any]] = []

        def ready(state: dict[str, Any]) -> None:
            listening.append(state)
            who = f"teacher {cfg.teacher}" if cfg.teacher else "no teacher"
            print(f"serving {cfg.served_model} at {state['base_url']} (mode {cfg.mode}, {who}); "
                  f"logs in {logs_dir(ws.artifacts_dir)}; Ctrl-C stops", file=sys.stderr, flush=True)  # fmt: skip

        try:
            serve(ws, cfg, spec, on_ready=ready)
        except KeyboardInterrupt:
            if not listening:
                raise  # stopped while loading: nothing was served ("cancelled")
            # Ctrl-C is how a gateway is meant to stop: requests in flight finished and their log lines are on disk.
            print(f"stopped serving {cfg.served_model}; logs in {logs_dir(ws.artifacts_dir)}", file=sys.stderr)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the calibration and per-slice thresholds on RUN's held-out evaluation, store them (the gateway's
    ``serve.thresholds``, the monitor's ``serve.calibration``), save the monitor's snapshot, print the routing
    curves."""
    from distill.output import CliProgress
    from train.monitor.calibrate import calibrate_run, describe, store_calibration
    from train.monitor.setup import build_setup

    given = [f"--{k.replace('_', '-')}" for k in (*START_ONLY, "mode", "share", "threshold", "thresholds",
                                                  "temperature") if k != "bar" and getattr(args, k) not in (None, False)]  # fmt: skip
    if given:
        raise UserError(f"{', '.join(given)}: `distill serve calibrate RUN` takes only --bar and --json")
    try:
        run_id = int(args.run)
    except (TypeError, ValueError):
        raise UserError(f"distill serve calibrate RUN: give a run id, got {args.run!r}") from None
    with open_workspace(args) as ws:
        eval_id, cal = calibrate_run(ws, run_id, args.bar or "default")
        store_calibration(ws, run_id, eval_id, cal)
        # the monitor reads the calibration from its snapshot while the gateway holds the workspace
        build_setup(ws, run_id=run_id, bar_name=args.bar or "default", progress=CliProgress(enabled=not args.json))
    if args.json:
        print_json({"run_id": run_id, "eval_id": eval_id, "thresholds": cal.thresholds(), **cal.to_dict()})
        return 0
    print("\n".join(describe(run_id, eval_id, cal)))
    print(f"\nstored: `distill serve {run_id}` starts with these thresholds; a running gateway takes them with "
          "`distill serve control --thresholds FILE` (the `thresholds` of --json)")  # fmt: skip
    return 0
