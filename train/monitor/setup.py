"""What the monitor needs from the workspace, read once: the served run and its training version, the quality bar,
prices, the calibration, and a sample of the training prompts with their embeddings (the drift reference).

While ``distill serve`` runs with a teacher it holds the workspace (DuckDB allows one writing process), so the setup
is also saved as a snapshot under ``<artifacts>/serve/monitor/`` each time it is built, and ``distill monitor`` falls
back to that snapshot (and says so) when the workspace is busy.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from curation.errors import UserError
from curation.progress import ProgressFn
from curation.teacher.config import TeacherConfig, list_teachers
from curation.workspace import Workspace
from train.bars import QualityBar, get_bar
from train.calibration import CALIBRATION_SETTING, IsotonicMap
from train.monitor.traffic import Pricing

REFERENCE_PER_SLICE = 300  # training prompts per slice the drift test compares with (seeded sample)


def snapshot_dir(artifacts_dir: Path) -> Path:
    """Where the monitor's setup snapshot lives: ``<artifacts>/serve/monitor/``."""
    return artifacts_dir / "serve" / "monitor"


@dataclass
class TrainingSample:
    """A seeded sample of the training version's train-side prompts (up to ``REFERENCE_PER_SLICE`` per slice), their
    embeddings, and which teacher models answered the version."""

    version: str
    slices: list[str]
    vectors: np.ndarray | None  # None: not embedded (the drift test was not asked for)
    embed_dtype: str
    teacher_models: dict[str, int]

    def of_slice(self, name: str) -> np.ndarray:
        assert self.vectors is not None
        return self.vectors[np.asarray(self.slices) == name] if self.slices else self.vectors[:0]


@dataclass
class MonitorSetup:
    """Everything the monitor reads from the workspace."""

    run_id: int | None = None
    version: str | None = None
    bar: QualityBar | None = None
    pricing: Pricing = field(default_factory=Pricing)
    calibration: IsotonicMap | None = None
    notes: list[str] = field(default_factory=list)  # what is missing and how to get it
    training: TrainingSample | None = None
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    from_snapshot: bool = False


def _served_run(ws: Workspace, run_id: int | None, version: str | None) -> tuple[int | None, str | None]:
    """(run, training version): as given, else the running gateway's run, else the newest finished run."""
    from train.store import get_run, latest_finished_run

    if version is not None:
        from curation.datasets import get_version

        get_version(ws, version)  # UserError naming the versions command when unknown
        return run_id, version
    if run_id is None:
        run_id = _gateway_run(ws) or latest_finished_run(ws)
    return (None, None) if run_id is None else (run_id, get_run(ws, run_id)["dataset_version"])


def _gateway_run(ws: Workspace) -> int | None:
    """The run the gateway serves, when one is running for this workspace (its state file, checked by /healthz)."""
    from train.serve.control import read_state

    try:
        run_id = read_state(ws.artifacts_dir).get("run_id")
    except UserError:
        return None  # no gateway running
    return int(run_id) if run_id is not None else None


def _teacher(ws: Workspace, name: str | None, training_models: dict[str, int]) -> TeacherConfig | None:
    """The named teacher; else the only one; else the one whose pinned model the training answers came from."""
    teachers = list_teachers(ws)
    if name is not None:
        from curation.teacher.config import get_teacher

        return get_teacher(ws, name)
    if len(teachers) == 1:
        return teachers[0]
    top = max(training_models, key=lambda m: training_models[m], default="")
    return next((t for t in teachers if top == t.model or top.startswith(t.model + "-")), None)


def training_sample(
    ws: Workspace,
    version: str,
    *,
    embed: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> TrainingSample:
    """Sample the version's train-side prompts per slice (seeded by record id) and, if ``embed``, embed them
    (workspace cache)."""
    from curation.embeddings import embed_texts, resolve_model

    rows = ws.query(
        "SELECT slice, prompt FROM (SELECT m.slice, r.prompt, row_number() OVER (PARTITION BY m.slice "
        "ORDER BY hash(m.record_id), m.record_id) AS k FROM dataset_members m JOIN records r USING (record_id) "
        "WHERE m.version = ? AND m.side = 'train') WHERE k <= ? ORDER BY slice, k",
        [version, REFERENCE_PER_SLICE],
    )
    models = ws.query(
        "SELECT r.teacher_model, count(*) FROM dataset_members m JOIN records r USING (record_id) "
        "WHERE m.version = ? AND r.teacher_model IS NOT NULL GROUP BY 1",
        [version],
    )
    ref = resolve_model(None)
    vectors = embed_texts(ws, [str(p or "") for _, p in rows], progress=progress, cancel=cancel) if embed else None
    return TrainingSample(version, [str(s) for s, _ in rows], vectors, ref.dtype, {str(m): int(n) for m, n in models})


def build_setup(
    ws: Workspace,
    *,
    run_id: int | None = None,
    version: str | None = None,
    bar_name: str = "default",
    teacher: str | None = None,
    drift: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> MonitorSetup:
    """Read the monitor's setup from an open workspace and save it as the snapshot; with ``drift``, embed the
    training sample (the cache makes that once per version). Without, nothing is saved (the snapshot stays whole)."""
    setup = MonitorSetup(bar=get_bar(ws, bar_name))
    setup.run_id, setup.version = _served_run(ws, run_id, version)
    if setup.bar is None:
        setup.notes.append(f"no quality bar {bar_name!r}: agreement is not measured (`distill bar set`)")
    if setup.version is None:
        setup.notes.append("no training version (no finished run; give --run or --version): drift is not measured")
    else:
        setup.training = training_sample(ws, setup.version, embed=drift, progress=progress, cancel=cancel)
    models = setup.training.teacher_models if setup.training else {}
    bar = setup.bar
    setup.pricing = Pricing(_teacher(ws, teacher, models), bar.teacher_price_per_1k if bar else None,
                            bar.student_price_per_hour if bar else None)  # fmt: skip
    cal = ws.get_setting(CALIBRATION_SETTING)
    if cal is None:
        setup.notes.append("no calibration: the accuracy estimate needs `distill serve calibrate RUN`")
    elif setup.run_id is not None and cal.get("run_id") != setup.run_id:
        setup.notes.append(f"the calibration is of run {cal.get('run_id')}, not of run {setup.run_id}: recalibrate")
    else:
        setup.calibration = IsotonicMap.from_dict(cal["isotonic"])
    if drift:
        save_snapshot(setup, ws.artifacts_dir)
    return setup


def save_snapshot(setup: MonitorSetup, artifacts_dir: Path) -> None:
    """Write the setup to ``snapshot_dir`` (JSON + the sample's vectors), replacing the previous one atomically."""
    folder = snapshot_dir(artifacts_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only artifacts folder: the monitor still works, it just cannot fall back later
    doc: dict[str, Any] = {"run_id": setup.run_id, "version": setup.version, "notes": setup.notes,
                           "built_at": setup.built_at.isoformat(),
                           "bar": {k: v for k, v in setup.bar.to_dict().items() if k != "created_at"} if setup.bar
                           else None,
                           "teacher": asdict(setup.pricing.teacher) if setup.pricing.teacher else None,
                           "teacher_per_1k": setup.pricing.teacher_per_1k,
                           "student_per_hour": setup.pricing.student_per_hour,
                           "calibration": setup.calibration.to_dict() if setup.calibration else None}  # fmt: skip
    tr = setup.training
    if tr is not None and tr.vectors is not None:
        doc["training"] = {"version": tr.version, "slices": tr.slices, "embed_dtype": tr.embed_dtype,
                           "teacher_models": tr.teacher_models}  # fmt: skip
        np.save(folder / "vectors.tmp.npy", tr.vectors)
        (folder / "vectors.tmp.npy").replace(folder / "vectors.npy")
    (folder / "setup.tmp.json").write_text(json.dumps(doc, indent=1))
    (folder / "setup.tmp.json").replace(folder / "setup.json")


def load_snapshot(artifacts_dir: Path) -> MonitorSetup:
    """The setup saved by the last ``build_setup`` (``UserError`` when there is none)."""
    folder = snapshot_dir(artifacts_dir)
    try:
        doc = json.loads((folder / "setup.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"no monitor snapshot in {folder}: run `distill monitor` once while the workspace is free "
                        "(before `distill serve`), so it can read the training data") from None  # fmt: skip
    setup = MonitorSetup(doc["run_id"], doc["version"], QualityBar(**doc["bar"]) if doc["bar"] else None,
                         Pricing(TeacherConfig(**doc["teacher"]) if doc["teacher"] else None, doc["teacher_per_1k"],
                                 doc["student_per_hour"]),
                         IsotonicMap.from_dict(doc["calibration"]) if doc["calibration"] else None, doc["notes"],
                         built_at=datetime.fromisoformat(doc["built_at"]), from_snapshot=True)  # fmt: skip
    if doc.get("training"):
        t = doc["training"]
        setup.training = TrainingSample(t["version"], t["slices"], np.load(folder / "vectors.npy"), t["embed_dtype"],
                                        t["teacher_models"])  # fmt: skip
    return setup
