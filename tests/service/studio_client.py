"""A reviewer at a studio, in its own process: ``python -m tests.service.studio_client WORKSPACE N``.

Runs the real app headless on the review screen and presses ``a`` (accept) ``N`` times, letting each decision land
before the next, as a person would; prints ``ready`` once the queue shows and ``done N`` at the end.
"""

from __future__ import annotations

import asyncio
import sys

from curation.workspace import Workspace
from studio.app import DistillStudio
from tests.studio.conftest import settle


async def review(path: str, n: int) -> None:
    with Workspace.open(path) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            print("ready", flush=True)
            for _ in range(n):
                await pilot.press("a")
                await settle(pilot)
    print("done", n, flush=True)


if __name__ == "__main__":
    asyncio.run(review(sys.argv[1], int(sys.argv[2])))
