"""The studio's teacher screen in a tiny App: pick, generate in a worker, cancel, synthesize inputs."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Select, Static

from curation.records import insert_records, new_batch
from curation.teacher.options import GENERATE
from curation.workspace import Workspace
from studio.screens.teacher import SYNTH_FIELDS, TeacherScreen
from studio.widgets.option_form import OptionForm
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
        assert screen.query_one("#gen-teacher", Select).value == "big"
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


async def test_every_generate_and_synth_field_is_visible_at_160x48(tws: Workspace) -> None:
    """Each declared option has a labelled field inside the screen (the old row of Inputs showed only the first)."""
    app = TinyApp(tws)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        visible = screen.region
        for form_id, options in (("#teacher-generate", GENERATE), ("#teacher-synth-form", SYNTH_FIELDS)):
            form = screen.query_one(form_id, OptionForm)
            assert form.options is options
            for opt in options:
                field = form.field(opt.name)
                assert field.region.area > 0 and visible.contains_region(field.region), opt.name
        tops = [screen.query_one("#teacher-generate", OptionForm).field(o.name).region.y for o in GENERATE]
        assert tops == list(range(tops[0], tops[0] + len(tops)))  # one line per field, no blank rows between


async def test_budget_is_validated_like_the_cli_and_synth_runs_from_the_screen(tws: Workspace) -> None:
    app = TinyApp(tws)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        gen = screen.query_one("#teacher-generate", OptionForm)
        gen.set_value("budget", "-1")
        await pilot.press("ctrl+r")
        await pilot.pause()
        err = str(screen.query_one("#gen-budget-error", Static).render())
        assert err == "Budget (USD) (--budget): must be >= 0, got -1"
        assert not tws.scalar("SELECT count(*) FROM teacher_ledger")  # nothing was sent
        synth = screen.query_one("#teacher-synth-form", OptionForm)
        synth.set_value("slice", "shipping")
        synth.set_value("n", "3")
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        summary = str(screen.query_one("#teacher-summary", Static).render())
        assert "slice shipping:" in summary and "new synthetic prompts" in summary, summary
    assert tws.scalar("SELECT count(*) FROM records WHERE origin = 'synthetic' AND slice = 'shipping'") > 0
