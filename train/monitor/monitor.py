"""The monitor: the gateway's log over a window, summarised (``traffic``), tested for drift (``drift``) and checked
against the bar's thresholds (``alarms``), as one report.

``Monitor`` keeps its log reader between calls, so ``refresh`` (every few seconds on the studio screen and with
``--watch``) reads only what was appended; the drift test embeds prompts and fits classifiers, so it runs apart
(``test_drift``) and its last result is reused until it runs again.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from curation.errors import UserError
from curation.progress import ProgressFn
from curation.records import NONE_SLICE, prompt_text
from curation.workspace import Workspace
from train.monitor.alarms import Alarm, find_alarms, new_teacher_models
from train.monitor.drift import DriftResult, drift_test
from train.monitor.logs import LogTail
from train.monitor.setup import MonitorSetup
from train.monitor.traffic import ALL, Traffic, enricher, summarize
from train.serve.logwriter import log_files

LIVE_PER_SLICE = 300  # newest live prompts per slice in the drift test (as many as training prompts per slice)
LIVE_OVERALL = 600  # newest live prompts of any slice, against the whole training sample
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhd])$")


@dataclass(frozen=True)
class Window:
    """Which requests count: the ``last`` span up to now (sliding), everything ``since`` a time, or all."""

    since: datetime | None = None
    last: timedelta | None = None

    def start(self, now: datetime) -> datetime | None:
        return now - self.last if self.last is not None else self.since

    def describe(self) -> str:
        if self.last is not None:
            return f"last {self.last}"
        return f"since {self.since:%Y-%m-%d %H:%M} UTC" if self.since else "all logged requests"


def parse_window(text: str) -> Window:
    """``30m``, ``2h``, ``7d`` (sliding), an ISO time (``2026-12-01T09:00``, UTC unless it says), or ``all``."""
    text = text.strip()
    if text == "all":
        return Window()
    m = _SPAN.match(text)
    if m:
        return Window(last=timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[m[2]]: float(m[1])}))
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--since {text!r}: give a span (30m, 2h, 7d), an ISO time (2026-12-01T09:00) or all") from None
    return Window(since=t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC))


@dataclass
class MonitorReport:
    """One look at production."""

    at: datetime
    window: str
    run_id: int | None
    version: str | None
    from_snapshot: bool
    notes: list[str]
    traffic: Traffic
    drift: list[DriftResult]
    drift_at: datetime | None
    training_teacher_models: dict[str, int]
    alarms: list[Alarm]
    files: int
    bad_lines: int
    new_teacher_models: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO text)."""
        return json.loads(
            json.dumps(asdict(self), default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
        )


class Monitor:
    """The gateway's log in ``logs`` seen through ``setup``; ``workspace`` (optional) caches live embeddings."""

    def __init__(self, setup: MonitorSetup, logs: Path, window: Window, workspace: Workspace | None = None) -> None:
        self.setup, self.logs, self.window, self.workspace = setup, logs, window, workspace
        self.tail = LogTail(logs, enrich=enricher(setup.bar))
        self.traffic: Traffic | None = None
        self.drift: list[DriftResult] = []
        self.drift_at: datetime | None = None
        self._lock = threading.Lock()  # the studio refreshes traffic and tests drift from two threads
        self._memo: dict[str, np.ndarray] = {}  # live prompt -> vector, when no workspace caches them

    def _rows(self, now: datetime) -> Any:
        start = self.window.start(now)
        with self._lock:
            self.tail.refresh(since=start)
            if self.window.last is not None and start is not None:
                self.tail.prune(start)
            return self.tail.window(since=start)

    def refresh(self, now: datetime | None = None) -> Traffic:
        """Read what the gateway appended and summarise the window."""
        now = now or datetime.now(UTC)
        rows = self._rows(now)
        hours = self.window.last.total_seconds() / 3600 if self.window.last is not None else None
        self.traffic = summarize(rows, self.setup.pricing, self.setup.calibration, hours)
        return self.traffic

    def live_prompts(self, now: datetime | None = None) -> dict[str, list[str]]:
        """The newest prompts per slice (up to ``LIVE_PER_SLICE``) and overall (``ALL``, up to ``LIVE_OVERALL``)."""
        rows = self._rows(now or datetime.now(UTC)).select(["started_at", "slice", "messages"])
        ts = rows["started_at"].to_numpy(zero_copy_only=False)
        order = np.argsort(ts.astype("datetime64[us]").astype(np.int64), kind="stable")[::-1]
        slices, messages = rows["slice"].to_pylist(), rows["messages"].to_pylist()
        out: dict[str, list[str]] = {ALL: []}
        for i in order:
            if messages[i] is None:
                continue
            bucket = out.setdefault(slices[i], [])
            take_slice, take_all = len(bucket) < LIVE_PER_SLICE, len(out[ALL]) < LIVE_OVERALL
            if take_slice or take_all:
                text = prompt_text(json.loads(messages[i]))
                if take_slice:
                    bucket.append(text)
                if take_all:
                    out[ALL].append(text)
        return {k: v for k, v in out.items() if v}

    def _embed(self, texts: list[str], progress: ProgressFn | None, cancel: threading.Event | None) -> np.ndarray:
        from curation.embeddings import embed_texts, encode, resolve_model

        assert self.setup.training is not None
        dtype = self.setup.training.embed_dtype
        if self.workspace is not None:
            return embed_texts(self.workspace, texts, dtype=dtype, progress=progress, cancel=cancel)
        missing = sorted({t for t in texts if t not in self._memo})
        if missing:
            for t, v in zip(missing, encode(resolve_model(None, dtype), missing), strict=True):
                self._memo[t] = v
        return np.vstack([self._memo[t] for t in texts])

    def test_drift(
        self, now: datetime | None = None, progress: ProgressFn | None = None, cancel: threading.Event | None = None
    ) -> list[DriftResult]:
        """Embed the newest live prompts and test each slice (and all of them) against the training sample."""
        training = self.setup.training
        if training is None or training.vectors is None:
            return []
        live = self.live_prompts(now)
        names = sorted(live)
        texts = [t for n in names for t in live[n]]
        vectors = self._embed(texts, progress, cancel) if texts else np.zeros((0, 0), np.float32)
        known = set(training.slices)
        out, at = [], 0
        for name in names:
            v = vectors[at : at + len(live[name])]
            at += len(live[name])
            pooled = name == ALL or name not in known
            ref = training.vectors if pooled else training.of_slice(name)
            out.append(drift_test(name, ref, v, new_slice=pooled and name not in (ALL, NONE_SLICE)))
        self.drift, self.drift_at = sorted(out, key=lambda d: (d.slice != ALL, d.slice)), now or datetime.now(UTC)
        return self.drift

    def report(self, now: datetime | None = None) -> MonitorReport:
        """The report of the last ``refresh`` (made now if there was none) and the last drift test."""
        now = now or datetime.now(UTC)
        traffic = self.traffic or self.refresh(now)
        training = self.setup.training.teacher_models if self.setup.training else {}
        files = len(log_files(self.logs))
        notes = list(self.setup.notes)
        if not files:
            notes.insert(0, f"no gateway log in {self.logs} yet (`distill serve` writes one line per request)")
        return MonitorReport(now, self.window.describe(), self.setup.run_id, self.setup.version,
                             self.setup.from_snapshot, notes, traffic, self.drift, self.drift_at, training,
                             find_alarms(self.setup.bar, traffic, self.drift, training), files, self.tail.bad_lines,
                             new_teacher_models(training, traffic.teacher_models))  # fmt: skip
