"""Assembling a gateway (student, teacher session, router, log, metrics) and running it under uvicorn.

``serve`` runs in the foreground until SIGINT/SIGTERM (``distill serve``); ``start`` runs it on a thread and
returns a handle (tests, the benchmark). Both write the state file once listening and close everything in order on
the way out: the student's batcher, the teacher session (its ledger rows committed), the request log.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curation.errors import UserError
from curation.teacher.requests import TeacherSession
from curation.workspace import Workspace
from train.bars import get_bar
from train.calibration import THRESHOLDS_SETTING
from train.serve.app import make_app
from train.serve.control import new_token, remove_state, write_state
from train.serve.gateway import Gateway
from train.serve.logwriter import ServeLog
from train.serve.metrics import ServeMetrics
from train.serve.routing import Router, bar_checks
from train.serve.settings import ServeConfig, StudentSpec, Thresholds, logs_dir
from train.serve.student import LocalStudent, RemoteStudent, Student


def workspace_thresholds(ws: Workspace, base: Thresholds) -> Thresholds:
    """``base`` updated by the workspace's calibrated thresholds (setting ``serve.thresholds``), if stored."""
    doc = ws.get_setting(THRESHOLDS_SETTING)
    return base if doc is None else Thresholds.from_json(doc, f"workspace setting {THRESHOLDS_SETTING}", base)


def student_source(ws: Workspace, spec: StudentSpec) -> tuple[str, str | None]:
    """(base model, adapter folder) of the student: a finished run's, or the ones given."""
    if spec.run_id is not None:
        from train.store import get_run

        run = get_run(ws, spec.run_id)
        if run["status"] != "done" or not run["adapter_path"]:
            raise UserError(f"run {spec.run_id} is {run['status']}; only a finished run can be served")
        return run["base_model"], run["adapter_path"]
    if spec.adapter and not Path(spec.adapter).is_dir():
        raise UserError(f"--adapter {spec.adapter}: no such folder")
    assert spec.base_model is not None  # StudentSpec.validate
    return spec.base_model, spec.adapter


def served_labels(ws: Workspace, cfg: ServeConfig, spec: StudentSpec) -> tuple[str, list[str]]:
    """The label field and set a served student's answers are kept in: the bar's label metric, else the references
    of the run's training file (``train.evaluate.eval_labels``, as an evaluation with --constrain-labels)."""
    from train.bars import require_bar
    from train.data import load_examples
    from train.evaluate import eval_labels

    if spec.url:
        raise UserError("--constrain-labels works on a local student (this process generates), not --student-url")
    rows = []
    if spec.run_id is not None:
        from train.store import get_run

        rows = load_examples(get_run(ws, spec.run_id)["data_path"])
    label_spec, labels = eval_labels(require_bar(ws, cfg.bar or "default"), rows, "trie")
    assert label_spec is not None  # eval_labels raises when there is none
    return label_spec.field, labels


@dataclass
class Built:
    """A built gateway and what closes it (the student, the teacher's pool and session, the log: reverse order of
    opening)."""

    gateway: Gateway
    token: str
    stack: ExitStack

    def close(self) -> None:
        self.stack.close()


def build(ws: Workspace, cfg: ServeConfig, spec: StudentSpec) -> Built:
    """Open the teacher session and the log, load the student; nothing listens yet. A failure closes what opened."""
    cfg.validate()
    spec.validate()
    metrics = ServeMetrics()
    checks = bar_checks(get_bar(ws, cfg.bar) if cfg.bar else None)
    with ExitStack() as stack:
        teacher = pool = None
        if cfg.teacher:
            teacher = stack.enter_context(TeacherSession(ws, cfg.teacher, budget_usd=cfg.teacher_budget_usd))
            pool = ThreadPoolExecutor(teacher.concurrency, thread_name_prefix="serve-teacher")
            stack.callback(pool.shutdown)
        log = ServeLog(logs_dir(ws.artifacts_dir), cfg.log_max_bytes, metrics.observe_sync)
        stack.callback(log.close)
        student: Student
        if spec.url:
            student = RemoteStudent(spec.url, spec.model or cfg.served_model, spec.key_env,
                                    timeout_s=cfg.student_timeout_s)  # fmt: skip
        else:
            from train.generate import load_for_inference

            base, adapter = student_source(ws, spec)
            labels = served_labels(ws, cfg, spec) if cfg.constrain_labels else None
            model, tok, dev = load_for_inference(base, adapter, spec.device, spec.precision)
            proc = None
            if labels is not None:
                from train.constrain import LabelConstraint

                proc = LabelConstraint(tok, *labels).processor
            student = LocalStudent(model, tok, dev, cfg.served_model, max_batch=cfg.max_batch,
                                   wait_ms=cfg.batch_wait_ms, timeout_s=cfg.student_timeout_s,
                                   on_batch=metrics.batch_size.observe, logits_processor=proc)  # fmt: skip
        stack.callback(student.close)
        gw = Gateway(cfg, Router(cfg, checks), student, teacher, log, metrics, pool)
        owned = stack.pop_all()  # from here the Built closes them
    return Built(gw, new_token(), owned)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one); a clear error when the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    if os.name != "nt":  # a restart may rebind at once past the old socket's TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _uvicorn(built: Built) -> Any:
    import uvicorn

    app = make_app(built.gateway, built.token)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
    return uvicorn.Server(config)


def _state(built: Built, host: str, port: int, run_id: int | None) -> dict[str, Any]:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return {"pid": os.getpid(), "host": host, "port": port, "base_url": f"http://{shown}:{port}/v1",
            "served_model": built.gateway.cfg.served_model, "run_id": run_id, "token": built.token,
            "started_at": datetime.now(UTC).isoformat()}  # fmt: skip


def serve(ws: Workspace, cfg: ServeConfig, spec: StudentSpec, *, on_ready: Any = None) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready(state)`` once listening."""
    built = build(ws, cfg, spec)
    artifacts = ws.artifacts_dir
    if cfg.teacher is None:
        ws.close()  # nothing more to write there: other processes may use the workspace (a served student teaches)
    sock = bind(cfg.host, cfg.port)
    port = sock.getsockname()[1]
    server = _uvicorn(built)
    state = _state(built, cfg.host, port, spec.run_id)
    write_state(artifacts, state)
    if on_ready is not None:
        on_ready(state)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # through Python, so the finally below runs
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        built.close()
        remove_state(artifacts, os.getpid())


@dataclass
class Running:
    """A gateway serving on a thread of this process."""

    base_url: str
    port: int
    gateway: Gateway
    state: dict[str, Any]
    _server: Any
    _thread: threading.Thread
    _built: Built
    _sock: socket.socket
    _artifacts: Path

    def stop(self) -> None:
        """Stop listening, finish in-flight requests, close the student, teacher session and log."""
        self._server.should_exit = True
        self._thread.join()
        self._sock.close()
        self._built.close()
        remove_state(self._artifacts, os.getpid())


def start(ws: Workspace, cfg: ServeConfig, spec: StudentSpec, timeout_s: float = 30.0) -> Running:
    """Serve on a background thread; return once it accepts connections."""
    built = build(ws, cfg, spec)
    sock = bind(cfg.host, cfg.port)
    port = sock.getsockname()[1]
    server = _uvicorn(built)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="serve-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            built.close()
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    state = _state(built, cfg.host, port, spec.run_id)
    write_state(ws.artifacts_dir, state)
    return Running(state["base_url"], port, built.gateway, state, server, thread, built, sock, ws.artifacts_dir)
