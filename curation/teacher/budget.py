"""The budget cap: money spent, possibly billed and reserved for requests in flight, never more than the limit.

Before a request is sent its worst-case cost (every input byte a token, plus the output cap it is sent with) is
reserved, so a budget is never exceeded even with many requests in flight; the real cost replaces the reservation
when the answer is in. An attempt abandoned after a timeout keeps its reservation as "possibly billed" (the
provider may have answered and billed it), and its retry needs a reservation of its own.
"""

from __future__ import annotations

import threading
from typing import Any

from curation.errors import UserError
from curation.teacher.config import TeacherConfig

POSSIBLY_BILLED_NOTE = "the worst-case cost of attempts abandoned after a timeout, which the provider may bill"


def possibly_billed_text(usd: float) -> str:
    """The "possibly billed" figure to print after a cost, when there is one (CLI and studio alike)."""
    return f" (+ ${usd:.4f} possibly billed: attempts abandoned after a timeout)" if usd else ""


def output_cap(cfg: TeacherConfig, params: dict[str, Any]) -> int:
    """The output tokens a request sent with ``params`` may bill at most."""
    return int(params.get("max_completion_tokens") or params.get("max_tokens") or cfg.max_output_tokens)


def estimate_cost(
    cfg: TeacherConfig, messages: list[dict[str, Any]], params: dict[str, Any] | None = None, *, batch: bool = False
) -> float:
    """An upper bound on one request's cost: every input byte a token (plus framing), the full output cap."""
    n_in = 16 + sum(8 + len(str(m.get("content") or "").encode()) for m in messages)
    return cfg.cost(n_in, output_cap(cfg, cfg.params if params is None else params), batch=batch)


class Budget:
    """What a session has committed, under one lock. ``limit`` None: no cap (everything is still counted)."""

    def __init__(self, limit: float | None) -> None:
        if limit is not None and limit < 0:
            raise UserError("--budget must be >= 0")
        self.limit = limit
        self.lock = threading.Lock()
        self.spent = 0.0
        self.possibly_billed = 0.0
        self.reserved = 0.0

    def reserve(self, est: float) -> bool:
        """Hold ``est`` for a request about to be sent; False if that could take the total past the limit."""
        with self.lock:
            if self.limit is not None and self.spent + self.possibly_billed + self.reserved + est > self.limit + 1e-12:
                return False
            self.reserved += est
            return True

    def settle(self, reserved: float, cost: float, possibly_billed: float) -> None:
        """A request ended: release what it reserved, count what it cost and what it may have cost."""
        with self.lock:
            self.reserved -= reserved
            self.spent += cost
            self.possibly_billed += possibly_billed
