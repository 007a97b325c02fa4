"""A reviewer at a studio, in its own process: ``python -m tests.service.studio_client WORKSPACE LIMIT``.

Runs the real app headless on the review screen and presses ``a`` (accept), letting each decision land before the
next, as a person would. It prints ``decided K`` after each decision and keeps deciding (up to ``LIMIT``, then it
waits, still open) until a line arrives on stdin; then it makes one more decision, so its session spans whatever the
test ran meanwhile, and prints ``done K``. Every error or warning the studio showed is printed as ``shown: ...``
before, and makes it exit 1: a refusal shown to the reviewer fails the test even when no decision was lost.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

from curation.workspace import Workspace
from studio.app import DistillStudio
from tests.studio.conftest import settle


def _keep_warnings(app: DistillStudio) -> list[str]:
    """Every warning and error the studio shows, kept (a toast expires; the test reads them at the end)."""
    shown: list[str] = []
    original = app.notify

    def notify(message: str, *, title: str = "", severity: str = "information", **kw: Any) -> None:
        if severity in ("warning", "error"):
            shown.append(f"{severity}: {title} {message}".strip())
        original(message, title=title, severity=severity, **kw)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    return shown


async def review(path: str, limit: int) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    with Workspace.open(path) as ws:
        app = DistillStudio(ws, start="review")
        shown = _keep_warnings(app)
        decided = 0

        async def decide(pilot: Any) -> None:
            nonlocal decided
            await pilot.press("a")
            await settle(pilot)
            decided += 1
            print("decided", decided, flush=True)

        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            while not stop.is_set() and decided < limit:
                await decide(pilot)
            await stop.wait()
            await decide(pilot)  # after the stop: this session was open and deciding the whole time
    for line in shown:
        print("shown:", line, flush=True)
    print("done", decided, flush=True)
    return 1 if shown else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(review(sys.argv[1], int(sys.argv[2]))))
