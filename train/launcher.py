"""Start the training subprocess for a run, stream its JSON lines into the workspace, cancel and resume it.

The child (``python -m train.worker``) reads only files in the run folder; this process holds the workspace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from curation.errors import UserError
from curation.progress import Progress, ProgressFn
from curation.soft_labels import LabelSpec
from curation.workspace import Workspace
from train import events as ev
from train import store
from train.config import RunConfig

EventFn = Callable[[ev.Event], None]
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunResult:
    """How a run ended."""

    run_id: int
    status: str  # done | failed | cancelled
    steps_done: int
    best_step: int | None
    best_eval_loss: float | None
    final_loss: float | None
    adapter_path: str | None
    stopped_early: bool
    error: str | None = None


def export_dataset(ws: Workspace, version: str, dest: Path, cfg: RunConfig | None = None) -> Path:
    """Export a curation dataset version to the run folder (needs ``curation.datasets``), with the soft-label
    columns when ``cfg`` asks for soft labels."""
    try:
        from curation.datasets import export_training_file  # type: ignore[import-not-found]
    except ImportError:
        raise UserError("dataset versions need curation.datasets, which this build lacks; pass --data FILE") from None
    spec = soft_label_spec(ws, cfg) if cfg is not None and cfg.soft_labels != "off" else None
    tokens = cfg is not None and cfg.soft_labels == "tokens"
    return Path(export_training_file(ws, version, dest, labels=spec, teacher_tokens=tokens))


def soft_label_spec(ws: Workspace, cfg: RunConfig) -> LabelSpec | None:
    """The checkable field soft labels are built on: ``cfg.label_field`` if given, else the quality bar's (with its
    label set when the bar names one). Records the field and labels in ``cfg``. ``UserError`` when candidates are
    asked for and no field is known."""
    from train.bars import get_bar

    bar = get_bar(ws)
    spec = bar.label_spec() if bar is not None else None
    if cfg.label_field and (spec is None or spec.field != cfg.label_field):
        spec = LabelSpec(cfg.label_field)
    if spec is None and cfg.soft_labels == "candidates":
        raise UserError("soft labels need the answers' checkable field: set a bar with exact:FIELD or a label "
                        "verifier on a field (`distill bar set`), or pass --label-field")  # fmt: skip
    if spec is not None:
        cfg.label_field, cfg.labels = spec.field, list(spec.labels) if spec.labels else None
    return spec


def check_soft_file(path: Path, cfg: RunConfig) -> None:
    """A training file given for a soft-label run must carry the soft-label columns (``curation.datasets``); the
    field they were computed for is recorded in ``cfg``."""
    import pyarrow.parquet as pq

    need = "candidates" if cfg.soft_labels == "candidates" else "teacher_tokens"
    if path.suffix != ".parquet":
        return  # JSON lines are read row by row; the worker says when no row has a soft target
    names = pq.read_schema(path).names
    if need not in names:
        raise UserError(f"{path.name} has no {need!r} column for soft labels ({cfg.soft_labels}); train on a "
                        "dataset version (--dataset), whose export computes them from the teachers' logprobs")  # fmt: skip
    if "label_field" in names and not cfg.label_field:
        fields = pq.read_table(path, columns=["label_field"]).column(0).drop_null().unique().to_pylist()
        cfg.label_field = fields[0] if len(fields) == 1 else None


def start_run(
    ws: Workspace,
    cfg: RunConfig,
    *,
    dataset_version: str | None = None,
    data: str | Path | None = None,
    group_id: int | None = None,
) -> int:
    """Record a new run and put its data and ``run.json`` in its folder; return the run id (not started yet)."""
    if (dataset_version is None) == (data is None):
        raise UserError("give either a dataset version or a data file")
    cfg.check_soft()
    if data is not None and not Path(data).exists():
        raise UserError(f"no training file at {data}")
    if data is not None and cfg.soft_labels != "off":
        check_soft_file(Path(data), cfg)
    if dataset_version is not None and cfg.soft_labels != "off":
        soft_label_spec(ws, cfg)  # a missing field is said before a run is recorded
    cfg.data_path = str(data or "")
    run_id = store.create_run(ws, cfg, dataset_version=dataset_version, group_id=group_id)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        if dataset_version is not None:
            dest = export_dataset(ws, dataset_version, out / "data.parquet", cfg)
        else:
            src = Path(str(data))
            # A copy, so the run stays reproducible when the source file changes.
            dest = out / ("data.parquet" if src.suffix == ".parquet" else "data.jsonl")
            shutil.copyfile(src, dest)
    except BaseException as exc:
        store.update_run(ws, run_id, status="failed", error=str(exc), finished_at=datetime.now())
        raise
    cfg.data_path = str(dest)
    cfg.save(out / "run.json")
    store.update_run(ws, run_id, data_path=cfg.data_path, config=cfg.to_json())
    return run_id


def execute_run(
    ws: Workspace,
    run_id: int,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_event: EventFn | None = None,
) -> RunResult:
    """Run (or resume: the worker restarts from the newest checkpoint) the worker for ``run_id`` until it ends.

    Setting ``cancel`` terminates the subprocess; the run is marked 'cancelled' and can be resumed later.
    """
    run = store.get_run(ws, run_id)
    if run["status"] == "done":
        raise UserError(f"run {run_id} already finished; start a new run instead")
    out = Path(run["out_dir"]).resolve()
    from train.trainer import latest_checkpoint

    ckpt = latest_checkpoint(out)
    store.forget_metrics_after(ws, run_id, int(ckpt.name.split("-")[1]) if ckpt else -1)
    store.update_run(ws, run_id, status="running", error=None, finished_at=None)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(PROJECT_ROOT), env.get("PYTHONPATH", "")] if p)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    with (out / "worker.log").open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "train.worker", "--config", str(out / "run.json")],
            stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=str(out),
        )  # fmt: skip
        stopper = _Stopper(proc, cancel)
        done: ev.RunFinished | None = None
        error: str | None = None
        unreadable: str | None = None
        total: int | None = None  # steps, once the worker has said
        try:
            assert proc.stdout is not None
            for n, line in enumerate(proc.stdout, 1):
                if not line.strip():
                    continue  # a library printing an empty line to our stdout says nothing
                event = ev.parse(line)
                match event:
                    case ev.TrainingStarted():
                        store.update_run(ws, run_id, hardware=event.hardware, n_train=event.n_train,
                                         n_heldout=event.n_heldout)  # fmt: skip
                    case ev.StepLogged() | ev.EvalLogged():
                        store.record_metric(ws, run_id, event)
                    case ev.RunFinished():
                        done = event
                    case ev.RunFailed():
                        error = event.message
                    case ev.MalformedEvent():
                        # Not fatal by itself (the exit code and a `done` event decide); said in the log and, if
                        # the run then fails without its own message, as the reason.
                        log.write(f"[launcher] worker stdout line {n}: {event.reason}: {event.line}\n")
                        log.flush()
                        unreadable = f"unreadable worker output (stdout line {n}: {event.reason}); see {log.name}"
                if on_event is not None:
                    on_event(event)
                if progress is not None:
                    _report(progress, event, total)
                if isinstance(event, ev.TrainingStarted):
                    total = event.total_steps
        except KeyboardInterrupt:
            stopper.stop()
        finally:
            rc = proc.wait()
            stopper.close()
    if error is None and not stopper.stopped:
        error = unreadable
    return _finish(ws, run_id, rc, done, error, stopper.stopped, out)


def _report(progress: ProgressFn, event: ev.Event, total: int | None) -> None:
    """Training progress: each step, and what happens between steps (loading the student, a held-out loss pass of
    seconds to minutes on a CPU), so a run is never silent."""
    if isinstance(event, ev.StepLogged):
        detail = f"loss {event.loss:.3f}  {event.tokens_per_s:.0f} tok/s  eta {event.eta_s:.0f}s"
        progress(Progress("train", event.step, event.total_steps, detail))
    elif isinstance(event, ev.PhaseStarted):
        what = "loading the student" if event.phase == "load" else f"held-out loss at step {event.step or 0}"
        progress(Progress("train", event.step or 0, total, what))
    elif isinstance(event, ev.EvalLogged):
        progress(Progress("train", event.step, total, f"held-out loss {event.eval_loss:.4f}"))


def _finish(
    ws: Workspace, run_id: int, rc: int, done: ev.RunFinished | None, error: str | None, stopped: bool, out: Path
) -> RunResult:
    steps = int(ws.scalar("SELECT coalesce(steps_done, 0) FROM runs WHERE run_id = ?", [run_id]))
    if done is not None:
        store.update_run(
            ws, run_id, status="done", finished_at=datetime.now(), steps_done=done.step, best_step=done.best_step,
            best_eval_loss=done.best_eval_loss, final_loss=done.final_loss, adapter_path=done.adapter_path,
            merged_path=done.merged_path, stopped_early=done.stopped_early,
        )  # fmt: skip
        return RunResult(run_id, "done", done.step, done.best_step, done.best_eval_loss, done.final_loss,
                         done.adapter_path, done.stopped_early)  # fmt: skip
    status = "cancelled" if stopped else "failed"
    if status == "failed" and error is None:
        error = f"worker exited with code {rc}; see {out / 'worker.log'}"
    store.update_run(ws, run_id, status=status, error=error, finished_at=datetime.now())
    return RunResult(run_id, status, steps, None, None, None, None, False, error)


class _Stopper:
    """Terminates the worker when the cancel event is set (a thread, so reading stdout never blocks cancel)."""

    def __init__(self, proc: subprocess.Popen[str], cancel: threading.Event | None) -> None:
        self.proc = proc
        self.cancel = cancel
        self.stopped = False
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._closed.is_set():
            if self.cancel is not None and self.cancel.wait(0.2):
                self.stop()
                return
            if self.cancel is None:
                self._closed.wait(0.5)

    def stop(self) -> None:
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def close(self) -> None:
        self._closed.set()


def run_training(
    ws: Workspace,
    cfg: RunConfig,
    *,
    dataset_version: str | None = None,
    data: str | Path | None = None,
    group_id: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_event: EventFn | None = None,
) -> RunResult:
    """Record a run, then train it in a subprocess until it ends (see ``start_run`` and ``execute_run``)."""
    run_id = start_run(ws, cfg, dataset_version=dataset_version, data=data, group_id=group_id)
    return execute_run(ws, run_id, progress=progress, cancel=cancel, on_event=on_event)
