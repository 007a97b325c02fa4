"""Pilot-driven review: every action persists across a reopen, undo, bulk with confirmation, 20 by keyboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.browse import get_record
from curation.workspace import Workspace
from studio.app import DistillStudio
from tests.studio.conftest import build_workspace, settle

pytestmark = pytest.mark.timeout(120)  # a hung worker fails the test instead of the whole run


def _review_app(ws: Workspace) -> DistillStudio:
    return DistillStudio(ws, start="review")


async def test_each_action_persists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILL_REVIEWER", "rita")
    path = build_workspace(tmp_path / "w.duckdb", n=30)
    decided: dict[str, int] = {}
    with Workspace.open(path) as ws:
        app = _review_app(ws)
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            screen = app.screen
            decided["accept"] = screen.current.record_id
            await pilot.press("a")
            decided["reject"] = screen.current.record_id
            await pilot.press("r")
            await pilot.press(*"wrong intent", "enter", "y")  # y: a new reason is confirmed once
            await settle(pilot)
            decided["edit"] = screen.current.record_id
            await pilot.press("e")
            await pilot.pause()
            area = app.screen.query_one("#edit-area")
            area.text = '{"intent": "refund", "urgency": "high", "summary": "fixed"}'
            await pilot.press("ctrl+s")
            await settle(pilot)
            decided["relabel"] = screen.current.record_id
            await pilot.press("l")
            await pilot.pause()
            app.screen.query_one("#prompt-input").value = "vip"
            await pilot.press("enter", "y")  # a new slice: confirmed
            await settle(pilot)
            decided["mark"] = screen.current.record_id
            await pilot.press("m")
            await settle(pilot)
            assert len(set(decided.values())) == 5  # each key moved on to the next record
    with Workspace.open(path) as ws:
        acc, rej, edi, rel, mar = (get_record(ws, decided[k]) for k in ("accept", "reject", "edit", "relabel", "mark"))
        assert acc.status == "accepted" and acc.reviewer == "rita"
        assert rej.status == "rejected" and rej.reason == "wrong intent"
        assert edi.status == "accepted" and '"fixed"' in edi.response and edi.original_response != edi.response
        assert rel.slice == "vip" and rel.original_slice != "vip"
        assert mar.status == "needs_review"


async def test_reject_with_an_empty_reason_keeps_asking(tmp_path: Path) -> None:
    """Enter on an empty reason neither rejects nor closes the dialog silently: the reviewer sees the hint."""
    from studio.widgets.modals import PromptModal

    path = build_workspace(tmp_path / "w.duckdb", n=5)
    with Workspace.open(path) as ws:
        app = _review_app(ws)
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            rid = app.screen.current.record_id
            await pilot.press("r")
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, PromptModal)
            assert "type something first" in str(app.screen.query_one("#prompt-hint").render())
            assert get_record(ws, rid).status == "unreviewed"
            await pilot.press(*"spam", "enter", "y")
            await settle(pilot)
            assert not isinstance(app.screen, PromptModal)
            rec = get_record(ws, rid)
            assert rec.status == "rejected" and rec.reason == "spam"


async def test_undo_from_the_queue(tmp_path: Path) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=10)
    with Workspace.open(path) as ws:
        app = _review_app(ws)
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            first = app.screen.current.record_id
            await pilot.press("a", "a")
            await settle(pilot)
            await pilot.press("u")
            await settle(pilot)
            second_id = ws.scalar("SELECT record_id FROM review_events ORDER BY event_id DESC LIMIT 1")
            assert app.screen.current.record_id == second_id  # undo brings the record back on screen
    with Workspace.open(path) as ws:
        assert get_record(ws, first).status == "accepted"
        assert get_record(ws, second_id).status == "unreviewed"
        assert ws.scalar("SELECT count(*) FROM review_events WHERE undone") == 1


async def test_bulk_on_filter_with_confirmation(tmp_path: Path) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=60)
    with Workspace.open(path) as ws:
        app = _review_app(ws)
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            await pilot.click("#f-slice")
            await pilot.press(*"login", "enter", "escape")  # esc: back to the queue (focus stays in the field)
            await settle(pilot)
            assert app.screen.current.slice == "login"
            await pilot.press("X")
            await pilot.press(*"duplicate", "enter", "y")  # a new reason, confirmed; then the bulk question
            await pilot.pause()
            question = str(app.screen.query_one("#question").render())
            assert "20 record(s)" in question and "slice=login" in question
            await pilot.press("n")  # declined: nothing happens
            await settle(pilot)
            assert ws.scalar("SELECT count(*) FROM review_events") == 0
            await pilot.press("X")
            await pilot.press(*"duplicate", "enter", "y")  # still new: nothing was stored
            await pilot.pause()
            await pilot.press("y")
            await settle(pilot)
            assert ws.scalar("SELECT count(*) FROM reviews WHERE status = 'rejected'") == 20
            assert app.screen.current is None  # the queue (to review, login) is now empty
            await pilot.press("u")
            await settle(pilot)
            assert ws.scalar("SELECT count(*) FROM reviews") == 0
            assert app.screen.current is not None


async def test_review_twenty_by_keyboard_and_reopen(tmp_path: Path) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=40)
    with Workspace.open(path) as ws:
        app = _review_app(ws)
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            for i in range(20):
                if i % 5 == 4:
                    await pilot.press("r", *"off topic", "enter", *(["y"] if i == 4 else []))  # new once
                else:
                    await pilot.press("a")
            await settle(pilot)
            progress = str(app.screen.query_one("#review-progress").render())
            assert progress  # rendered
        app.exit()
    with Workspace.open(path) as ws:
        assert ws.scalar("SELECT count(*) FROM reviews WHERE status = 'accepted'") == 16
        assert ws.scalar("SELECT count(*) FROM reviews WHERE status = 'rejected' AND reason = 'off topic'") == 4
        assert ws.scalar("SELECT count(DISTINCT record_id) FROM review_events") == 20
