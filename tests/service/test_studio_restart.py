"""A studio whose service was killed carries on: the next action starts a new service and reconnects."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from curation.workspace import Workspace
from studio.app import DistillStudio
from tests.service.conftest import wait_gone
from tests.studio.conftest import Note, settle

pytestmark = pytest.mark.timeout(180)


async def test_studio_survives_a_service_restart(
    shared: tuple[Path, Workspace], served: list[int], notes: list[Note]
) -> None:
    path, ws = shared
    with Workspace.open(path) as mine:
        app = DistillStudio(mine, start="review")
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            first = app.screen.current.record_id
            await pilot.press("a")
            await settle(pilot)
            old = mine._backend.service_pid  # type: ignore[union-attr]
            old_instance = mine._backend.service_instance  # type: ignore[union-attr]
            os.kill(old, signal.SIGKILL)
            assert wait_gone(old)
            second = app.screen.current.record_id
            await pilot.press("a")  # the decision reconnects: a new service starts, the WAL replays
            await settle(pilot)
            served.append(mine._backend.service_pid)  # type: ignore[union-attr]
            assert mine._backend.service_instance != old_instance  # a pid can come back on a busy machine
            await pilot.press("end")
            await settle(pilot)
    assert [n for n in notes if n.severity == "error"] == []
    accepted = {r for (r,) in ws.query("SELECT record_id FROM reviews WHERE status = 'accepted'")}
    assert {first, second} <= accepted


def test_a_begin_on_a_channel_that_died_unseen_goes_to_a_fresh_channel(
    shared: tuple[Path, Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed service's sockets close with its last thread, so an idle channel can pass its staleness check and
    fail at BEGIN: nothing was begun, so the transaction begins again on a fresh channel (a decision is not lost)."""
    from curation.service.client import Channel

    _, ws = shared
    real, failed = Channel.call, []

    def dies_once(self: Channel, op: str, table: object = None, **args: object) -> object:
        if op == "begin" and not failed:
            failed.append(op)
            self.close()  # as a socket the dead service closed under it
            raise self.lost()
        return real(self, op, table, **args)

    monkeypatch.setattr(Channel, "call", dies_once)
    with ws.transaction() as cur:
        cur.execute("UPDATE records SET slice = 'moved' WHERE record_id = 1")
    assert failed == ["begin"] and ws.scalar("SELECT slice FROM records WHERE record_id = 1") == "moved"
