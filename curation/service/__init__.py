"""The workspace service: one process per workspace owns its DuckDB connection; studios and CLI commands reach it
over a Unix socket, so any number of them work on one workspace at once.

DuckDB lets one process open a file for writing. With the service, that process is ``python -m curation.service``,
started on demand by the first ``Workspace.open`` of the file (``launch.py``), stopped when no client has been
connected for ``DISTILL_SERVICE_IDLE_S`` seconds (default 30). Each client socket is a session with its own DuckDB
cursor: reads run concurrently (DuckDB's MVCC: they never wait for a writer), write transactions are serialised by
one lock held from BEGIN to COMMIT (``writelock.WriteLock``), and a client that dies mid-transaction is rolled back.
``Workspace`` hides all of it (``client.py`` gives cursors with DuckDB's methods).

``DISTILL_SERVICE`` chooses: ``auto`` (default) uses the service and opens the file in-process only when no socket
can be made here (``paths.NoSocket``: no Unix sockets, no private folder); ``off`` always opens in-process (the
file is then held by this process alone, as before); ``on`` refuses to work without the service.
"""

from __future__ import annotations

import os

SERVICE_ENV = "DISTILL_SERVICE"
IDLE_ENV = "DISTILL_SERVICE_IDLE_S"
DEFAULT_IDLE_S = 30.0  # long enough that a run of CLI commands reuses one service (a start costs ~0.3-1 s)
MODES = ("auto", "on", "off")


def service_mode(explicit: bool | None = None) -> str:
    """``on``, ``off`` or ``auto``: ``explicit`` (True/False) wins over ``$DISTILL_SERVICE``."""
    if explicit is not None:
        return "on" if explicit else "off"
    value = (os.environ.get(SERVICE_ENV) or "auto").strip().lower()
    aliases = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}
    value = aliases.get(value, value)
    if value not in MODES:
        from curation.errors import UserError

        raise UserError(f"${SERVICE_ENV} is {value!r}; use one of {', '.join(MODES)}")
    return value


def idle_seconds() -> float:
    """How long a service with no client waits before it stops (``$DISTILL_SERVICE_IDLE_S``)."""
    raw = os.environ.get(IDLE_ENV)
    if not raw:
        return DEFAULT_IDLE_S
    try:
        value = float(raw)
    except ValueError:
        from curation.errors import UserError

        raise UserError(f"${IDLE_ENV} is {raw!r}; give a number of seconds") from None
    return max(0.0, value)
