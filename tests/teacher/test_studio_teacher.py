"""The studio's teacher screen in a tiny App: pick, generate in a worker, cancel."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Select, Static

from curation.records import insert_records, new_batch
from curation.workspace import Workspace
from studio.screens.teacher import TeacherScreen
from tests.teacher.conftest import output_counts
from tests.teacher.fake_openai import FakeOpenAI


class TinyApp(App[None]):
    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws

    def on_mount(self) -> None:
        self.push_screen(TeacherScreen(self.ws))


async def test_generate_from_the_screen(tws: Workspace) -> None:
    app = TinyApp(tws)
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#teacher-name", Select).value == "big"
        assert "no synthetic inputs yet" in str(screen.query_one("#teacher-synthetic", Static).render())
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        summary = str(screen.query_one("#teacher-summary", Static).render())
        assert "done: 12 generated" in summary
        assert "done 12 failed 0 cached 0" in str(screen.query_one("#teacher-counts", Static).render())
    assert set(output_counts(tws).values()) == {1}


async def test_cancel_keeps_what_arrived(tws: Workspace, server: FakeOpenAI) -> None:
    server.latency = 0.15
    app = TinyApp(tws)
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        await pilot.press("ctrl+r")
        while server.total_successes() < 4:
            await pilot.pause(0.02)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "cancelled" in str(screen.query_one("#teacher-summary", Static).render())
    kept = sum(output_counts(tws).values())
    assert 4 <= kept < 12
    assert kept == server.total_successes()  # every answer received was stored


async def test_synthetic_share_is_shown(tws: Workspace) -> None:
    with tws.transaction() as cur:
        b = new_batch(cur, "synthetic:big:login", "synthetic")
        insert_records(cur, b, [{"messages": [{"role": "user", "content": "new login question"}], "slice": "login",
                                 "origin": "synthetic"}])  # fmt: skip
    app = TinyApp(tws)
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = str(app.screen.query_one("#teacher-synthetic", Static).render())
        assert shown == "synthetic share: login 1/5 (20%)"
