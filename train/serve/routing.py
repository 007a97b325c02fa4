"""Who answers a request: the mode (changed live), canary hashing by a caller's key, the request's slice, and the
checks that send a student answer back to the teacher (confidence under the slice's threshold, a failing check of
the quality bar)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curation.records import NONE_SLICE
from curation.verifiers import get_field
from train.bars import QualityBar
from train.metrics import is_check, metric_name, score
from train.serve.settings import ServeConfig, Thresholds, check_mode
from train.serve.student import StudentAnswer


@dataclass(frozen=True)
class Live:
    """The settings that change without a restart, read once per request."""

    mode: str
    share: float
    thresholds: Thresholds


def key_hash(key: str) -> str:
    """The hash a canary decision is made on (and the only trace of the caller's key in the log)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def in_share(hashed: str, share: float) -> bool:
    """Whether a key's hash falls in the first ``share`` of the hash space: deterministic per key, and a larger
    share keeps every key a smaller one had (5% -> 25% only adds users)."""
    return int(hashed[:8], 16) / 2**32 < share


def bar_checks(bar: QualityBar | None) -> list[dict[str, Any]]:
    """The bar's metrics that judge an answer on its own (valid JSON, label in the set, regex, schema, curation
    verifiers), which a live answer can be held to; an exact match needs a reference and is left out."""
    if bar is None:
        return []
    return [m for m in bar.metrics if is_check(m) and (m.get("verifier") or {}).get("type") != "exact_match"]


class Router:
    """Routing decisions for one gateway; ``update`` changes mode, share and thresholds for the next requests."""

    def __init__(self, cfg: ServeConfig, checks: list[dict[str, Any]]) -> None:
        self.cfg = cfg
        self.checks = [(metric_name(c), c) for c in checks]
        self._lock = threading.Lock()
        self._live = Live(cfg.mode, cfg.share, cfg.thresholds)

    @property
    def live(self) -> Live:
        return self._live  # replaced whole under the lock, so a request sees one consistent set

    def update(self, mode: str | None = None, share: float | None = None, thresholds: Thresholds | None = None) -> Live:
        """Change what is given, validated; return the new settings."""
        with self._lock:
            cur = self._live
            new = Live(mode or cur.mode, cur.share if share is None else share, thresholds or cur.thresholds)
            check_mode(new.mode, new.share)
            self._live = new
        return new

    def key_of(self, headers: Mapping[str, str], body: dict[str, Any]) -> tuple[str, bool]:
        """The caller's key (the configured header), else the request's messages; and whether the header gave it."""
        given = headers.get(self.cfg.key_header)
        if given:
            return given, True
        return json.dumps(body.get("messages"), sort_keys=True, ensure_ascii=False), False

    def slice_of(self, headers: Mapping[str, str], body: dict[str, Any]) -> str:
        """The request's slice: the slice header, else the body's slice field (``metadata.slice``), else (none)."""
        given = headers.get(self.cfg.slice_header)
        if given and given.strip():
            return given.strip()
        v = get_field(body, self.cfg.slice_field)
        return v.strip() if isinstance(v, str) and v.strip() else NONE_SLICE

    def route(self, live: Live, hashed: str) -> str:
        """``both`` (shadow), ``student`` or ``teacher`` for a request whose key hashes to ``hashed``."""
        if live.mode == "shadow":
            return "both"
        if live.mode == "student" or in_share(hashed, live.share):
            return "student"
        return "teacher"

    def fallback_reason(self, answer: StudentAnswer, slice_name: str, live: Live) -> str | None:
        """Why the student's answer must not be served: ``low_confidence`` (under the slice's threshold, after the
        calibration temperature) or ``verifier:<metric>`` (the first failing check of the bar); None to serve it."""
        conf = answer.confidence(live.thresholds.temperature)
        threshold = live.thresholds.for_slice(slice_name)
        if threshold > 0 and (conf is None or conf < threshold):  # no tokens: nothing to be sure of
            return "low_confidence"
        for name, spec in self.checks:
            if score(spec, answer.text) == 0.0:
                return f"verifier:{name}"
        return None
