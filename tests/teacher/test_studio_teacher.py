"""The studio's teacher screen in a tiny App: pick, generate in a worker, cancel, synthesize inputs."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Select, Static

from curation.records import insert_records, new_batch
from curation.teacher.options import GENERATE
from curation.workspace import Workspace
from studio.screens.teacher import SYNTH_FIELDS, TeacherScreen
from studio.widgets.option_form import OptionForm
from tests.teacher.conftest import KEY, KEY_ENV, output_counts
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


async def test_add_a_teacher_from_the_screen(tws: Workspace, server: FakeOpenAI) -> None:
    """The 'Add a teacher' fields (TEACHERS_ADD, as `distill teachers add`): a key pasted where its variable's name
    goes is refused on that field and nothing is saved; a good entry is saved and picked for generation."""
    app = TinyApp(tws)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        form = screen.query_one("#teacher-add-form", OptionForm)
        for name, value in (("name", "second"), ("base_url", server.base_url), ("model", "m2"),
                            ("key_env", KEY)):  # fmt: skip
            form.set_value(name, value)
        await pilot.press("ctrl+o")
        await app.workers.wait_for_complete()
        await pilot.pause()
        err = str(screen.query_one("#add-key-env-error", Static).render())
        assert err.startswith("Key variable (--key-env): ") and "***" in err and KEY not in err, err
        assert tws.scalar("SELECT count(*) FROM teachers") == 1
        form.set_value("key_env", KEY_ENV)
        form.set_value("ack_terms", True)
        form.set_value("param", 'temperature=0.3 stop=["a b", "c"]')
        form.field("model").focus()
        await pilot.press("enter")  # Enter in a field adds, as the button and ctrl+o do
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.query_one("#gen-teacher", Select).value == "second"
        assert "teacher second saved" in str(screen.query_one("#teacher-add-result", Static).render())
    row = tws.query_dicts("SELECT model, api_key_env, terms_ack, params FROM teachers WHERE name = 'second'")[0]
    assert (row["model"], row["api_key_env"], row["terms_ack"]) == ("m2", KEY_ENV, True)
    assert '"stop": ["a b", "c"]' in row["params"] and '"temperature": 0.3' in row["params"]
