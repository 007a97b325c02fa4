"""The workspace's one write lock in its service, and which statements write.

Held from BEGIN to COMMIT by a session's transaction, across transactions by ``exclusive()``, and for one statement
that writes outside a transaction (``Service.writes`` tells those apart with ``is_write``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import duckdb


class WriteLock:
    """The one write lock of the workspace, re-entrant per owner (a client's thread), counted in holds."""

    def __init__(self, on_abandoned: Callable[[], None]) -> None:
        self._cond = threading.Condition()
        self._owner: str | None = None
        self._holds = 0
        self._abandoned = False
        self._on_abandoned = on_abandoned

    def acquire(self, owner: str) -> None:
        with self._cond:
            while self._owner not in (None, owner):
                self._cond.wait()
            self._owner = owner
            self._holds += 1

    def release(self, *, abandoned: bool = False) -> None:
        """Drop one hold; ``abandoned`` when its session died. The last hold of a dead owner cleans up first."""
        with self._cond:
            self._holds -= 1
            self._abandoned |= abandoned
            if self._holds:
                return
            if self._abandoned:
                self._abandoned = False
                try:
                    self._on_abandoned()  # still under the lock: no other writer sees the half-done work
                except Exception as exc:
                    print(f"cleanup after a dead client failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._owner = None
            self._cond.notify_all()

    def acquire_for_statement(self, client: str) -> bool:
        """Wait for other clients' writes, for one write outside a transaction; False (nothing taken) when this
        client holds the lock already (its own transaction or ``exclusive()`` in another thread: waiting would
        deadlock it)."""
        with self._cond:
            while self._owner is not None:
                if self._owner.startswith(client + ":"):
                    return False
                self._cond.wait()
            self._owner = client + ":statement"
            self._holds += 1
            return True

    @property
    def owner(self) -> str | None:
        return self._owner


# Statements that change nothing stored; any other kind (INSERT, UPDATE, CREATE, COPY, CHECKPOINT...) is a write.
_READS = frozenset(
    getattr(duckdb.StatementType, name)
    for name in ("SELECT", "EXPLAIN", "SET", "VARIABLE_SET", "PRAGMA", "CALL", "TRANSACTION", "PREPARE", "RELATION")
)


def is_write(kinds: list[duckdb.StatementType]) -> bool:
    """Whether statements of these kinds (``extract_statements``) may change what is stored."""
    return any(k not in _READS for k in kinds)
