"""The checklist's machinery: an item's state, the registry, and the reads several items share (``Context``).

The items themselves are in ``train.checklist``; an item is a function ``Context -> ItemState`` registered with
``@item(phase, title, screen)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from curation.options import FlagOption, OptionSet
from curation.workspace import Workspace
from train.bars import QualityBar, get_bar

PHASES = ("scope and justify", "define success", "data", "teacher outputs", "student", "evaluation", "rollout")
# `distill train --strict`: the checklist as a gate instead of warnings.
STRICT = OptionSet(
    "train gate",
    (FlagOption(name="strict", help="refuse to train while checklist items of 'define success' or 'data' are open"),),
)


@dataclass(frozen=True)
class ItemState:
    state: str  # ok | open | n/a
    detail: str
    next_step: str = ""


def ok(detail: str) -> ItemState:
    return ItemState("ok", detail)


def todo(detail: str, next_step: str) -> ItemState:
    return ItemState("open", detail, next_step)


@dataclass(frozen=True)
class Item:
    key: str
    phase: str
    title: str
    check: Callable[[Context], ItemState]
    screen: str | None  # the studio screen (a SCREENS key) where it is closed


@dataclass
class ItemResult:
    """One item as measured now."""

    key: str
    phase: str
    title: str
    state: str
    detail: str
    next_step: str
    screen: str | None


ITEMS: list[Item] = []


def item(phase: str, title: str, screen: str | None = None) -> Callable[[Callable[[Context], ItemState]], Any]:
    """Register a checklist item (in the order of this file, within its phase)."""
    assert phase in PHASES

    def add(fn: Callable[[Context], ItemState]) -> Callable[[Context], ItemState]:
        ITEMS.append(Item(fn.__name__, phase, title, fn, screen))
        return fn

    return add


class Context:
    """What several items read, read once: the bar, the dataset version in question, the newest runs and evaluation."""

    def __init__(self, ws: Workspace, version: str | None = None) -> None:
        self.ws = ws
        self._version = version

    @cached_property
    def bar(self) -> QualityBar | None:
        return get_bar(self.ws)

    @cached_property
    def version(self) -> str | None:
        """The version being judged: the one given (``distill train --dataset V``), else the newest."""
        if self._version is not None:
            return self._version
        v = self.ws.scalar("SELECT name FROM dataset_versions ORDER BY created_at DESC, name LIMIT 1")
        return None if v is None else str(v)

    @cached_property
    def slices(self) -> list[Any]:
        from curation.overview import workspace_overview

        return workspace_overview(self.ws).slices

    @cached_property
    def runs(self) -> list[dict[str, Any]]:
        """Finished runs, newest first."""
        return self.ws.query_dicts("SELECT run_id, base_model, config, adapter_path, stopped_early FROM runs "
                                   "WHERE status = 'done' ORDER BY run_id DESC")  # fmt: skip

    @cached_property
    def evaluation(self) -> dict[str, Any] | None:
        """The newest evaluation of a tuned student on the held-out split (not on an external gold set)."""
        rows = self.ws.query_dicts("SELECT eval_id, run_id, gap, passed, created_at FROM evaluations "
                                   "WHERE kind = 'tuned' AND eval_set = 'heldout' ORDER BY eval_id DESC LIMIT 1")  # fmt: skip
        return rows[0] if rows else None

    @cached_property
    def rollout(self) -> Any:
        from train.rollout_state import rollout_state

        return rollout_state(self.ws)
