"""Team review in the studio: the reviewer's name asked once, fixed label sets, queues, comments, guidelines."""

from __future__ import annotations

import pytest

from curation import review, team
from curation.browse import RecordFilter, count_records, get_record
from curation.workspace import Workspace
from studio.app import DistillStudio, make_studio
from studio.reviewer import reviewer_path
from studio.screens.review import ReviewScreen
from studio.widgets.modals import ConfirmModal, LabelModal
from tests.studio.conftest import build_workspace, settle, status_text

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def config(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DISTILL_REVIEWER", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("DISTILL_KEYMAP", str(tmp_path / "none.toml"))
    return tmp_path / "config"


async def test_reviewer_name_is_asked_once_and_remembered(tmp_path, config) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = make_studio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            field = app.screen.query_one("#prompt-input")
            field.value = ""
            await pilot.press(*"alice", "enter")
            await settle(pilot)
            await pilot.press("a")
            await settle(pilot)
        assert reviewer_path().read_text().strip() == "alice"
        assert ws.scalar("SELECT reviewer FROM review_events") == "alice"
        again = make_studio(ws, start="review")
        async with again.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            assert isinstance(again.screen, ReviewScreen) and again.screen.reviewer == "alice"
            assert "reviewer alice" in status_text(again, "#review-status")


async def test_relabel_offers_the_slices_and_confirms_a_new_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_REVIEWER", "ana")
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            first = app.screen.current
            target = "login" if first.slice != "login" else "billing"
            await pilot.press("l", *target[:3], "right", "enter")  # → takes the suggestion
            await settle(pilot)
            assert get_record(ws, first.record_id).slice == target
            second = app.screen.current.record_id
            await pilot.press("l", *"secruity", "enter")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmModal) and "new label" in str(app.screen.question)
            await pilot.press("n")  # declined: back in the dialog, nothing stored
            await pilot.pause()
            assert isinstance(app.screen, LabelModal)
            assert get_record(ws, second).slice != "secruity"
            await pilot.press("escape")
            await pilot.press("r", *"wrong", "enter")  # no earlier reason: "wrong" is new, confirmed
            await pilot.pause()
            await pilot.press("y")
            await settle(pilot)
            assert get_record(ws, second).status == "rejected"


async def test_my_queue_conflicts_comments_and_guidelines(tmp_path, monkeypatch) -> None:
    from train.bars import QualityBar, set_bar

    monkeypatch.setenv("DISTILL_REVIEWER", "bob")
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=12)) as ws:
        team.assign(ws, ["alice", "bob"], overlap=1.0)
        review.accept(ws, 1, reviewer="alice")
        review.reject(ws, 1, "wrong", reviewer="carol")
        set_bar(ws, QualityBar(task="Accept only **valid JSON** triage.", metrics=[{"kind": "valid_json"}],
                               threshold=0.9))  # fmt: skip
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert screen.queue_name() == "mine" and screen.filter.pending_for == "bob"
            await pilot.press("a")  # bob's verdict leaves bob's queue only
            await settle(pilot)
            assert count_records(ws, RecordFilter(pending_for="bob")) == 11
            await pilot.press("Q")
            await settle(pilot)
            assert screen.queue_name() == "conflicts" and screen.current.record_id == 1
            await pilot.press("c", *"ask billing", "enter")
            await settle(pilot)
            assert [c["body"] for c in get_record(ws, 1).comments] == ["ask billing"]
            await pilot.press("g")
            await pilot.pause()
            guide = screen.query_one("#review-guide")
            assert guide.display and "valid JSON" in screen.query_one("#review-guide-text")._markdown


async def test_split_the_queue_between_reviewers_from_the_keyboard(tmp_path, monkeypatch, notes) -> None:
    from studio.widgets.option_form import OptionForm

    monkeypatch.setenv("DISTILL_REVIEWER", "bob")
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=12)) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("S")
            await pilot.pause()
            await pilot.press(*"alice,bob", "enter")
            await settle(pilot)
            per = dict(ws.query("SELECT reviewer, count(*) FROM review_assignments GROUP BY 1"))
            assert per == {"alice": 6, "bob": 6}
            assert app.screen.queue_name() == "mine" and app.screen.filter.pending_for == "bob"
            await pilot.press("S")
            await pilot.pause()
            app.screen.query_one(OptionForm).set_value("overlap", "1.5")  # out of range: said in the dialog
            await pilot.press(*"solo", "enter")
            await pilot.pause()
            assert type(app.screen).__name__ == "AssignModal"
            app.screen.query_one(OptionForm).set_value("overlap", "0.5")  # valid, but needs two reviewers
            await pilot.press("enter")
            await settle(pilot)
            assert any("an overlap needs at least two reviewers" in n.message for n in notes)
            assert dict(ws.query("SELECT reviewer, count(*) FROM review_assignments GROUP BY 1")) == per
