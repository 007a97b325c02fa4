"""Exceptions that mean "the user asked for something that cannot be done" (exit code 1, one-line message)."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by input or a request; the CLI prints its message and exits 1, never a traceback."""


class WorkspaceLockedError(UserError):
    """The workspace file is held by another process (DuckDB allows one writer process)."""


class WorkspaceServiceLost(UserError):
    """The workspace service stopped while this process was talking to it (killed, or the machine is out of memory).

    The statement or transaction in flight was not kept; the next call starts a new service (``curation.service``).
    """


class Cancelled(Exception):
    """Raised inside long operations when their cancel event is set; the transaction is rolled back."""
