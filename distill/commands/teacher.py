"""`distill teachers ...`, `distill generate`, `distill synth ...`, `distill batch ...`: the teacher at work."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TypeVar

from curation.errors import UserError
from curation.teacher.budget import POSSIBLY_BILLED_NOTE
from curation.teacher.config import (
    get_teacher,
    list_teachers,
    remove_teacher,
    save_teacher,
)
from curation.teacher.options import BATCH_SUBMIT, GENERATE, SYNTH, SYNTH_FULFIL, TEACHERS_ADD, teacher_from_options
from distill.common import add_json_flag, open_workspace
from distill.output import print_json, print_table
from distill.teacher_runs import (
    cmd_batch_collect,
    cmd_batch_status,
    cmd_batch_submit,
    cmd_generate,
    cmd_synth_fulfil,
    cmd_synth_run,
    cmd_synth_share,
)

RAW = argparse.RawDescriptionHelpFormatter
T = TypeVar("T")

TEACHERS_EPILOG = """examples:
  export OPENAI_API_KEY=...          # the key stays in the environment; only its NAME is stored
  distill teachers add gpt4o --base-url https://api.openai.com/v1 --model gpt-4o-2024-08-06 \\
      --key-env OPENAI_API_KEY --price-in 2.5 --price-out 10 --ack-terms
  distill teachers add local --base-url http://127.0.0.1:8000/v1 --model qwen2.5-72b --no-key \\
      --param temperature=0.2 --param top_logprobs=3 --ack-terms
  distill teachers add small-teacher --from-run 3   # a running `distill serve 3` teaches a smaller student
  distill teachers list
  distill teachers show gpt4o --json
  distill teachers remove local"""
GENERATE_EPILOG = """examples:
  distill generate gpt4o                          # every record without a response yet
  distill generate gpt4o --budget 5               # stop before spending more than $5
  distill generate gpt4o --all --slice billing    # a second teacher's answers for one slice, side by side
  distill generate gpt4o --all --where "prompt ILIKE '%refund%'" --limit 100
Stop with Ctrl-C: answers already received are kept; run the same command again to finish."""
SYNTH_EPILOG = """examples:
  distill synth run gpt4o --slice shipping -n 50     # 50 new prompts in the style of that slice
  distill oversample --request security=200          # queue an input request (or --flagged --request-each N)
  distill synth fulfil gpt4o                         # make the inputs every open request asks for
  distill synth share                                # synthetic share per slice
  distill generate gpt4o                             # then get the teacher's answers for them"""
BATCH_EPILOG = """examples:
  distill batch submit gpt4o                  # write, upload and create a Batch API job for records without a response
  distill batch status                        # every job; `distill batch status 3` polls one
  distill batch collect 3 --wait              # wait, download and import the output (resumable after a restart)"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    t = sub.add_parser("teachers", help="configure teachers (endpoint, model, key variable, prices)", parents=[common],
                       formatter_class=RAW, epilog=TEACHERS_EPILOG)  # fmt: skip
    ts = t.add_subparsers(dest="teachers_cmd", metavar="ACTION", required=True)
    add = ts.add_parser("add", help="add (or --replace) a teacher", parents=[common], formatter_class=RAW,
                        epilog=TEACHERS_EPILOG)  # fmt: skip
    TEACHERS_ADD.add_to_parser(add)
    add.set_defaults(func=cmd_add)
    ls = ts.add_parser("list", help="configured teachers with spend", parents=[common], epilog=TEACHERS_EPILOG,
                       formatter_class=RAW)  # fmt: skip
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)
    sh = ts.add_parser("show", help="one teacher's config, spend and outputs", parents=[common],
                       epilog=TEACHERS_EPILOG, formatter_class=RAW)  # fmt: skip
    sh.add_argument("name")
    add_json_flag(sh)
    sh.set_defaults(func=cmd_show)
    rm = ts.add_parser("remove", help="forget a teacher (its outputs and ledger stay)", parents=[common],
                       epilog=TEACHERS_EPILOG, formatter_class=RAW)  # fmt: skip
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)

    g = sub.add_parser("generate", help="generate teacher answers (cache, retries, budget, ledger)", parents=[common],
                       formatter_class=RAW, epilog=GENERATE_EPILOG)  # fmt: skip
    GENERATE.add_to_parser(g)
    add_json_flag(g)
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("synth", help="synthetic inputs for weak slices", parents=[common], formatter_class=RAW,
                       epilog=SYNTH_EPILOG)  # fmt: skip
    ss = s.add_subparsers(dest="synth_cmd", metavar="ACTION", required=True)
    run = ss.add_parser("run", help="ask the teacher for N new prompts for a slice", parents=[common],
                        formatter_class=RAW, epilog=SYNTH_EPILOG)  # fmt: skip
    SYNTH.add_to_parser(run)
    add_json_flag(run)
    run.set_defaults(func=cmd_synth_run)
    ful = ss.add_parser("fulfil", help="fulfil every open input request (from `distill oversample --request`)",
                        parents=[common], formatter_class=RAW,
                        epilog=SYNTH_EPILOG)  # fmt: skip
    SYNTH_FULFIL.add_to_parser(ful)
    add_json_flag(ful)
    ful.set_defaults(func=cmd_synth_fulfil)
    sh2 = ss.add_parser("share", help="synthetic share per slice", parents=[common], formatter_class=RAW,
                        epilog=SYNTH_EPILOG)  # fmt: skip
    add_json_flag(sh2)
    sh2.set_defaults(func=cmd_synth_share)

    b = sub.add_parser("batch", help="generate through the Batch API (submit, status, collect)", parents=[common],
                       formatter_class=RAW, epilog=BATCH_EPILOG)  # fmt: skip
    bs = b.add_subparsers(dest="batch_cmd", metavar="ACTION", required=True)
    sb = bs.add_parser("submit", help="write, upload and create a batch job", parents=[common], formatter_class=RAW,
                       epilog=BATCH_EPILOG)  # fmt: skip
    BATCH_SUBMIT.add_to_parser(sb)
    add_json_flag(sb)
    sb.set_defaults(func=cmd_batch_submit)
    st = bs.add_parser("status", help="list jobs, or poll one", parents=[common], formatter_class=RAW,
                       epilog=BATCH_EPILOG)  # fmt: skip
    st.add_argument("job", type=int, nargs="?")
    add_json_flag(st)
    st.set_defaults(func=cmd_batch_status)
    co = bs.add_parser("collect", help="download and import a finished job", parents=[common], formatter_class=RAW,
                       epilog=BATCH_EPILOG)  # fmt: skip
    co.add_argument("job", type=int)
    co.add_argument("--wait", action="store_true", help="poll until the job ends")
    co.add_argument("--poll", type=float, default=30.0, metavar="S", help="seconds between polls (default 30)")
    add_json_flag(co)
    co.set_defaults(func=cmd_batch_collect)


# -- teachers -----------------------------------------------------------------------------------------------


def _served_student(args: argparse.Namespace, values: dict[str, Any]) -> tuple[str, str]:
    """(base URL, model) of run ``--from-run``'s student: the workspace's running gateway serving that run (asked
    for the student alone, whatever its mode), or ``--base-url`` of another server holding it."""
    from curation.workspace import artifacts_dir_for, default_workspace_path
    from train.serve.control import read_state
    from train.serve.settings import STUDENT_ONLY_SUFFIX

    run = values["from_run"]
    if values["base_url"]:
        return values["base_url"], values["model"] or f"distill-run-{run}"
    state = read_state(artifacts_dir_for(args.workspace or default_workspace_path()))
    if state.get("run_id") != run:
        raise UserError(f"the running gateway serves {state.get('served_model')}, not run {run}; start "
                        f"`distill serve {run}` (another --port) or pass --base-url")  # fmt: skip
    return state["base_url"], values["model"] or state["served_model"] + STUDENT_ONLY_SUFFIX


def cmd_add(args: argparse.Namespace) -> int:
    values = TEACHERS_ADD.from_args(args)
    cfg = teacher_from_options(values, _served_student(args, values) if values["from_run"] is not None else None)
    with open_workspace(args) as ws:
        save_teacher(ws, cfg, replace=values["replace"])
    key_from = f"key from ${cfg.api_key_env}" if cfg.api_key_env else "no key"
    print(f"teacher {cfg.name}: {cfg.model} at {cfg.base_url} ({key_from})")
    if not cfg.terms_ack:
        print("note: generation is refused until you add it again with --ack-terms --replace", file=sys.stderr)
    if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
        print(
            f"note: ${cfg.api_key_env} is not set in this shell; export it before `distill generate`", file=sys.stderr
        )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from curation.teacher.store import ledger_summary  # (pyarrow; here so that every command starts fast)

    with open_workspace(args) as ws:
        rows = [(t.public_dict(), ledger_summary(ws, t.name)) for t in list_teachers(ws)]
    if args.json:
        print_json([{**t, "spend": s} for t, s in rows])
        return 0
    print_table(
        ["name", "model", "base url", "key var", "terms", "requests", "spent $", "possibly billed $"],
        [
            [
                t["name"],
                t["model"],
                t["base_url"],
                t["api_key_env"] or "(none)",
                "ok" if t["terms_ack"] else "NOT ACKED",
                s["requests"],
                s["cost_usd"],
                s["possibly_billed_usd"],
            ]
            for t, s in rows
        ],
    )
    if any(s["possibly_billed_usd"] for _, s in rows):
        print(f"possibly billed: {POSSIBLY_BILLED_NOTE}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from curation.teacher.store import ledger_summary

    with open_workspace(args) as ws:
        t = get_teacher(ws, args.name).public_dict()
        spend = ledger_summary(ws, args.name)
        outputs = ws.scalar("SELECT count(*) FROM teacher_outputs WHERE teacher = ?", [args.name])
    doc = {**t, "spend": spend, "outputs": outputs}
    if args.json:
        print_json(doc)
        return 0
    for k, v in doc.items():
        print(f"{k:16} {json.dumps(v) if isinstance(v, dict | list) else v}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        remove_teacher(ws, args.name)
    print(f"removed teacher {args.name} (its outputs and ledger stay)")
    return 0


# -- generation ---------------------------------------------------------------------------------------------
