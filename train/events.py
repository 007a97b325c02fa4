"""The training worker's events: one dataclass per kind, one serialiser (the worker) and one parser (the launcher,
the store and the studio).

On the wire each event is one JSON object per line, ``{"event": KIND, **fields}``. ``parse`` never raises: a line
that is not JSON, names an unknown kind, or lacks a field or has one of the wrong type becomes a ``MalformedEvent``
saying why. Keys a kind does not declare are ignored, so a stored ``run_metrics`` row (the step/eval fields plus
``phase``) parses as the event that wrote it.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from functools import cache
from typing import Any, ClassVar


@dataclass(frozen=True)
class PhaseStarted:
    """The worker entered a phase: ``load`` (the student), ``eval`` (a held-out evaluation at ``step``)."""

    KIND: ClassVar[str] = "phase"
    phase: str
    step: int | None = None


@dataclass(frozen=True)
class RunResumed:
    """The worker restarted from a checkpoint; steps after ``step`` are redone."""

    KIND: ClassVar[str] = "resumed"
    step: int
    checkpoint: str


@dataclass(frozen=True)
class TrainingStarted:
    """Data and model are loaded; training begins (or goes on after ``RunResumed``)."""

    KIND: ClassVar[str] = "start"
    total_steps: int
    n_train: int
    n_heldout: int
    model_path: str
    hardware: dict[str, Any]
    trainable_params: int
    n_soft: int | None = None  # soft-label runs: training rows with a soft target (the rest train on hard labels)


@dataclass(frozen=True)
class StepLogged:
    """One optimiser step; stored as a ``run_metrics`` row of phase ``train``."""

    KIND: ClassVar[str] = "step"
    PHASE: ClassVar[str] = "train"
    step: int
    loss: float
    lr: float
    tokens_per_s: float
    eta_s: float
    epoch: float
    total_steps: int | None = None  # not stored: a step read back from ``run_metrics`` has none


@dataclass(frozen=True)
class EvalLogged:
    """A held-out evaluation (step 0 = the untuned student); stored as a ``run_metrics`` row of phase ``eval``."""

    KIND: ClassVar[str] = "eval"
    PHASE: ClassVar[str] = "eval"
    step: int
    eval_loss: float
    best: bool | None = None  # not stored: an evaluation read back from ``run_metrics`` has none


@dataclass(frozen=True)
class CheckpointSaved:
    """A complete checkpoint for ``step`` is on disk (a run killed after this resumes from here)."""

    KIND: ClassVar[str] = "checkpoint"
    step: int


@dataclass(frozen=True)
class RunFinished:
    """Training ended normally; the best adapter is at ``adapter_path``."""

    KIND: ClassVar[str] = "done"
    step: int
    final_loss: float
    best_step: int | None
    best_eval_loss: float | None
    adapter_path: str
    merged_path: str | None
    stopped_early: bool
    n_train: int
    n_heldout: int


@dataclass(frozen=True)
class RunFailed:
    """The worker raised; ``message`` is ``Type: text``, the traceback goes to the run's log."""

    KIND: ClassVar[str] = "error"
    message: str
    traceback: str = ""


@dataclass(frozen=True)
class MalformedEvent:
    """A line from the worker that is no event of ours (made by ``parse``, never sent by the worker)."""

    KIND: ClassVar[str] = "malformed"
    reason: str
    line: str


Event = (
    PhaseStarted
    | RunResumed
    | TrainingStarted
    | StepLogged
    | EvalLogged
    | CheckpointSaved
    | RunFinished
    | RunFailed
    | MalformedEvent
)
EVENT_TYPES: tuple[type, ...] = typing.get_args(Event)
BY_KIND: dict[str, type] = {cls.KIND: cls for cls in EVENT_TYPES}
# The kinds that become ``run_metrics`` rows, by the row's ``phase``.
METRIC_KINDS: dict[str, str] = {cls.PHASE: cls.KIND for cls in (StepLogged, EvalLogged)}
_SHOWN = 200  # characters of a bad line kept in its MalformedEvent (a stray library dump can be megabytes)


def to_dict(event: Event) -> dict[str, Any]:
    """The wire object of an event: ``{"event": KIND, **fields}``."""
    return {"event": event.KIND, **asdict(event)}


def serialise(event: Event) -> str:
    """One JSON line (no newline) for an event; ``parse`` reads it back equal."""
    return json.dumps(to_dict(event))


def parse(data: str | bytes | Mapping[str, Any]) -> Event:
    """The event in a JSON line (or an already decoded object); a ``MalformedEvent`` saying why if it is none."""
    if isinstance(data, Mapping):
        obj: Any = data
        shown = repr(dict(data))[:_SHOWN]
    else:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        shown = text.strip()[:_SHOWN]
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return MalformedEvent(f"not JSON ({exc.msg} at column {exc.colno})", shown)
    if not isinstance(obj, Mapping):
        return MalformedEvent(f"a JSON {type(obj).__name__}, not an object", shown)
    kind = obj.get("event")
    cls = BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return MalformedEvent(f"unknown event kind {kind!r}", shown)
    values: dict[str, Any] = {}
    for name, (allowed, required) in _schema(cls).items():
        if name not in obj:
            if required:
                return MalformedEvent(f"{kind!r} event lacks field {name!r}", shown)
            continue
        value = obj[name]
        if not _fits(value, allowed):
            want = " or ".join(sorted("null" if t is type(None) else t.__name__ for t in allowed))
            got = "null" if value is None else type(value).__name__
            return MalformedEvent(f"{kind!r} event field {name!r} is {got}, not {want}", shown)
        values[name] = float(value) if float in allowed and type(value) is int else value
    return cls(**values)


@cache
def _schema(cls: type) -> dict[str, tuple[frozenset[type], bool]]:
    """Per field: the accepted runtime types and whether the field is required."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[frozenset[type], bool]] = {}
    for f in fields(cls):
        hint = hints[f.name]
        parts = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        allowed = frozenset(typing.get_origin(p) or p for p in parts)
        out[f.name] = (allowed, f.default is MISSING and f.default_factory is MISSING)
    return out


def _fits(value: Any, allowed: frozenset[type]) -> bool:
    # bool is an int in Python, but a JSON true is no step number or loss.
    if type(value) is bool:
        return bool in allowed
    if type(value) is int and float in allowed:
        return True
    return any(isinstance(value, t) for t in allowed if t is not bool)
