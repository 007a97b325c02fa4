"""Exceptions that mean "the user asked for something that cannot be done" (exit code 1, one-line message)."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by input or a request; the CLI prints its message and exits 1, never a traceback."""


class WorkspaceLockedError(UserError):
    """The workspace file is held by another process (DuckDB allows one writer process)."""


class Cancelled(Exception):
    """Raised inside long operations when their cancel event is set; the transaction is rolled back."""
