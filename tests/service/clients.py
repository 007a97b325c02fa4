"""Client processes for the service tests: ``python -m tests.service.clients ACTION WORKSPACE [ARGS]``.

Each opens the workspace as any command would (``$DISTILL_SERVICE`` set by the test), says what it did on stdout
(one line per step, flushed) and, for the ``hold``/``exclusive`` actions, waits to be killed.
"""

from __future__ import annotations

import sys
import time

from curation.records import new_batch
from curation.review import accept
from curation.workspace import Workspace


def review(path: str, n: str, offset: str) -> None:
    """Accept ``n`` records, one transaction each, starting at the ``offset``-th record (ids wrap around)."""
    with Workspace.open(path) as ws:
        ids = [r[0] for r in ws.query("SELECT record_id FROM records ORDER BY record_id")]
        print("open", flush=True)
        for i in range(int(n)):
            accept(ws, ids[(int(offset) + i) % len(ids)])
        print("done", n, flush=True)


def hold(path: str) -> None:
    """Commit one setting, then stay inside a transaction that changed it, wrote another and a review event."""
    ws = Workspace.open(path)
    ws.set_setting("committed", 1)
    with ws.transaction() as cur:
        cur.execute("INSERT INTO settings VALUES ('uncommitted', '1', now())")
        cur.execute("UPDATE settings SET value = '2' WHERE key = 'committed'")
        cur.execute(
            "INSERT INTO review_events (record_id, action, reviewer, created_at) VALUES (1, 'accept', 'k', now())"
        )
        print("in transaction", flush=True)
        time.sleep(600)


def long_write(path: str) -> None:
    """Inside a write transaction, run a statement that would take minutes."""
    ws = Workspace.open(path)
    with ws.transaction() as cur:
        print("running", flush=True)
        cur.execute("SELECT count(*) FROM range(1000000000000) a WHERE a % 7 = 3").fetchall()


def exclusive(path: str) -> None:
    """As the fast import between its two transactions: the lock held, a batch committed as 'importing'."""
    ws = Workspace.open(path)
    with ws.exclusive():
        with ws.transaction() as cur:
            new_batch(cur, "half.jsonl", "log", status="importing")
        print("holding", flush=True)
        time.sleep(600)


def hold_file(path: str) -> None:
    """Open the file in-process (no service) and keep it."""
    ws = Workspace.open(path, service=False)  # kept: the file stays locked while this process lives
    print("open", flush=True)
    time.sleep(600)
    ws.close()


if __name__ == "__main__":
    action, *rest = sys.argv[1:]
    {"review": review, "hold": hold, "long-write": long_write, "exclusive": exclusive, "hold-file": hold_file}[action](
        *rest
    )
