"""Loud worker failures: a worker that ends in error becomes a visible error unless it says its failure is benign.

Textual posts ``Worker.StateChanged`` only to the node that ran the worker (the message does not bubble), so every
studio screen or widget that runs workers mixes in ``LoudWorkers``, which hands each failed worker to the app
(tests/studio/test_failures.py checks that every such class does). The app (``DistillStudio.on_work_failed``)
decides with ``is_benign`` and words the notification with ``describe``; nothing here touches widgets.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker, WorkerState

from curation.errors import Cancelled, UserError
from curation.teacher.config import TeacherConfig, redact

F = TypeVar("F", bound=Callable[..., Any])
_BENIGN_ATTR = "_benign_failures"


def benign(*errors: type[BaseException]) -> Callable[[F], F]:
    """Mark a worker method whose failure with one of ``errors`` is expected and needs no message.

    Put it above ``@work`` and say why beside it. ``Cancelled`` is always benign (the user asked for it)."""

    def mark(fn: F) -> F:
        setattr(fn, _BENIGN_ATTR, errors)
        return fn

    return mark


def is_benign(worker: Worker[Any]) -> bool:
    """Whether ``worker``'s error is one its method declared benign (or a cancellation)."""
    error = worker.error
    if isinstance(error, Cancelled):
        return True
    # @work names the worker after its method unless given a name; an unknown name is loud (the safe default).
    method = getattr(type(worker.node), worker.name, None)
    return isinstance(error, getattr(method, _BENIGN_ATTR, ()))


@dataclass
class WorkFailed(Message):
    """A worker ended in error (posted to the app by ``LoudWorkers``)."""

    worker: Worker[Any]


class LoudWorkers:
    """Mixin for screens and widgets that run workers: every worker that ends in error is handed to the app.

    Textual calls each class's handler along the MRO, so a subclass may still handle ``Worker.StateChanged``
    itself (to put its controls back, say) without silencing this one."""

    def on_worker_state_changed(self: DOMNode, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.app.post_message(WorkFailed(event.worker))


@dataclass(frozen=True)
class Failure:
    """What the user is told: one line, and the traceback behind it (None for a ``UserError``)."""

    where: str
    message: str
    traceback: str | None


def scrub(text: str, teachers: Iterable[TeacherConfig]) -> str:
    """``text`` without any configured teacher's API key or anything key-shaped."""
    for cfg in teachers:
        text = redact(text, cfg) or ""
    return redact(text) or ""


def describe(where: str, worker: Worker[Any], teachers: Iterable[TeacherConfig] = ()) -> Failure:
    """The failure of ``worker`` (run by screen ``where``) in words: a ``UserError`` says its own message;
    anything else says what failed ("Overview: load failed: RuntimeError: ...") and keeps the traceback."""
    error = worker.error
    assert error is not None, "describe() is for workers that ended in error"
    teachers = list(teachers)
    if isinstance(error, UserError):
        return Failure(where, scrub(str(error), teachers), None)
    lines = str(error).strip().splitlines()
    what = worker.name.strip("_").replace("_", " ") or "a background task"
    message = f"{where}: {what} failed: {type(error).__name__}" + (f": {lines[0]}" if lines else "")
    formatted = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return Failure(where, scrub(message, teachers), scrub(formatted, teachers))
