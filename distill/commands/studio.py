"""`distill studio [WORKSPACE]` and `distill demo`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from curation.errors import UserError
from curation.teacher.config import TeacherConfig, list_teachers, save_teacher
from curation.workspace import Workspace, artifacts_dir_for, default_workspace_path
from sample_data import LOGS as SAMPLE

if TYPE_CHECKING:
    from sample_data.offline_teacher import process as offline

OFFLINE = "offline"  # the workspace teacher the demo registers
WEB_HOST, WEB_PORT = "127.0.0.1", 8000
# The offline teacher is priced like gpt-4o-mini (USD per 1M tokens in/out, list price 2024-07), so the ledger and
# the payback estimate have realistic costs to show.
OFFLINE_PRICE_IN, OFFLINE_PRICE_OUT = 0.15, 0.60
# A teacher must name the environment variable of its key, and the client refuses to run when it is unset. The
# offline teacher accepts any key, so it names a variable every shell sets; the value (sent only to 127.0.0.1) must
# be printable ASCII to travel in an HTTP header.


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "studio",
        parents=[common],
        help="open the studio on a workspace",
        epilog="examples:\n  distill studio shop.duckdb          # a new name creates an empty workspace, opened on Import\n"
        "  DISTILL_WORKSPACE=shop.duckdb distill studio",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("path", nargs="?", metavar="WORKSPACE", help="workspace file (or use -w)")
    web = s.add_argument_group("in a browser (textual-serve: each browser tab runs its own studio)")
    web.add_argument("--web", action="store_true", help="serve the studio over HTTP instead of this terminal")
    web.add_argument("--host", default=WEB_HOST, help=f"address to listen on (default {WEB_HOST}: this machine only)")
    web.add_argument("--port", type=int, default=WEB_PORT, help=f"port (default {WEB_PORT})")
    web.add_argument("--public-url", metavar="URL",
                     help="the address browsers use, when it differs from http://HOST:PORT (a proxy, 0.0.0.0)")  # fmt: skip
    s.set_defaults(func=cmd_studio)
    d = sub.add_parser(
        "demo",
        parents=[common],
        help="create the sample workspace (once) and open the studio on it",
        epilog="examples:\n  distill demo                 # ./demo.duckdb, with the offline teacher `offline` started\n"
        "  distill demo -w /tmp/demo.duckdb\n  distill demo --no-open       # only create it (and start the teacher)\n"
        "  distill demo --stop-teacher  # stop the offline teacher; `distill demo` starts it again",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--no-open", action="store_true", help="create the sample workspace but do not open the studio")
    d.add_argument("--no-teacher", action="store_true",
                   help=f"do not start the offline sample teacher (teacher `{OFFLINE}`, no API key needed)")  # fmt: skip
    d.add_argument("--stop-teacher", action="store_true", help="stop this workspace's offline teacher and exit")
    d.set_defaults(func=cmd_demo)


def _has_screen() -> bool:
    """A terminal, or a browser: textual-serve runs each session's studio with Textual's web driver on pipes."""
    return sys.stdout.isatty() or "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")


def _run(ws: Workspace, start: str = "overview") -> None:
    from studio.app import run_studio  # Textual only when the studio is opened

    if not _has_screen():
        raise UserError("the studio needs a terminal (stdout is not a TTY); `distill studio --web` serves a browser")
    run_studio(ws, start=start)


def _preload_studio() -> None:
    try:
        import studio.app
        import studio.screens.overview  # noqa: F401
    except Exception:
        pass  # imported again where used, which raises it there


def _serve_web(args: argparse.Namespace, path: Path) -> int:
    """Serve the studio through textual-serve: each browser session starts `distill studio PATH` in a subprocess."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise UserError("`--web` needs textual-serve (pip install textual-serve)") from None
    with Workspace.open(path):  # it must open (and be migrated) before any browser waits on it; then let it go
        pass
    command = shlex.join([sys.executable, "-m", "distill", "studio", str(path.resolve())])
    server = Server(command, host=args.host, port=args.port, title=f"Distill Studio — {path.name}",
                    public_url=args.public_url)  # fmt: skip
    print(f"serving the studio on {server.public_url} (ctrl+c stops)", file=sys.stderr)
    server.serve()
    return 0


def cmd_studio(args: argparse.Namespace) -> int:
    named = args.path or args.workspace or os.environ.get("DISTILL_WORKSPACE")
    path = Path(named or default_workspace_path())
    if not path.exists() and not named:
        # Only a workspace the user named is created: a bare `distill studio` in the wrong folder should not
        # leave an empty distill.duckdb behind.
        raise UserError(
            f"no workspace at {path}; name one to create it (`distill studio shop.duckdb`), "
            f"import into one (`distill import FILE -w {path}`) or try `distill demo`"
        )
    if args.web:
        if not path.exists():
            raise UserError(f"no workspace at {path}; `--web` serves an existing one (import into it first)")
        return _serve_web(args, path)
    created = not path.exists()
    if created and not _has_screen():
        raise UserError("the studio needs a terminal (stdout is not a TTY)")  # before creating anything
    # Textual and the screens load while the workspace opens (its service, if none runs, starts in another
    # process): the two took ~0.4 s each, one after the other.
    threading.Thread(target=_preload_studio, daemon=True).start()
    with Workspace.open(path) as ws:
        if created:
            print(f"created empty workspace {path}", file=sys.stderr)
        empty = not ws.scalar("SELECT count(*) FROM records")
        _run(ws, start="import" if empty else "overview")
    return 0


def register_offline_teacher(ws: Workspace, running: offline.Running) -> TeacherConfig:
    """Add the workspace teacher ``offline`` for a running offline teacher, or point the existing one (its other
    settings kept) at the server's current base URL and model."""
    cfg = _offline_teacher(ws)
    if cfg is None:
        cfg = TeacherConfig(
            name=OFFLINE, base_url=running.base_url, model=running.model, api_key_env="",
            price_in_per_m=OFFLINE_PRICE_IN, price_out_per_m=OFFLINE_PRICE_OUT, terms_ack=True, timeout_s=30.0,
            max_retries=2,  # a local server: a refused connection is not fixed by waiting, an answer takes ms
        )  # fmt: skip
    elif (cfg.base_url, cfg.model) == (running.base_url, running.model):
        return cfg
    else:
        cfg = dataclasses.replace(cfg, base_url=running.base_url, model=running.model)
    save_teacher(ws, cfg, replace=True)
    return cfg


def _offline_teacher(ws: Workspace) -> TeacherConfig | None:
    return next((t for t in list_teachers(ws) if t.name == OFFLINE), None)


def _start_offline_teacher(ws: Workspace) -> None:
    from sample_data.offline_teacher import process as offline  # (urllib, ssl: not for `distill studio`)

    try:
        running, started = offline.start(ws.artifacts_dir)
    except RuntimeError as exc:
        raise UserError(f"{exc}; `distill demo --no-teacher` opens the demo without it") from None
    cfg = register_offline_teacher(ws, running)
    print(f"offline teacher {'started' if started else 'running'}: teacher `{cfg.name}` = {cfg.model} at "
          f"{cfg.base_url} (pid {running.pid}), a local sample teacher (no API key), priced ${cfg.price_in_per_m:g}/${cfg.price_out_per_m:g} per 1M tokens in/out; "
          "`distill demo --stop-teacher` stops it", file=sys.stderr)  # fmt: skip


def cmd_demo(args: argparse.Namespace) -> int:
    path = Path(args.workspace or os.environ.get("DISTILL_DEMO_WORKSPACE") or "demo.duckdb")
    if args.stop_teacher:
        from sample_data.offline_teacher import process as offline

        stopped = offline.stop(artifacts_dir_for(path))
        print(f"stopped the offline teacher (pid {stopped.pid}, port {stopped.port})" if stopped
              else f"no offline teacher running for {path}", file=sys.stderr)  # fmt: skip
        return 0
    with Workspace.open(path) as ws:
        if not ws.scalar("SELECT count(*) FROM import_batches WHERE status = 'done'"):
            from curation.importing import import_file

            if not SAMPLE.exists():
                raise UserError(f"sample data missing at {SAMPLE}; run python -m sample_data.generate")
            r = import_file(ws, SAMPLE)
            print(f"created sample workspace {path}: {r.n_imported:,} records "
                  f"(for the CLI: export DISTILL_WORKSPACE={path}, or -w {path} on each command)", file=sys.stderr)  # fmt: skip
        if not args.no_teacher:
            _start_offline_teacher(ws)
        if not args.no_open:
            _run(ws)
    return 0
