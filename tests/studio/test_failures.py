"""Loud worker failures: a screen's worker that raises shows an error with its traceback one key away; a UserError
shows its message plainly; a benign failure shows nothing; no API key reaches the message or the traceback."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import studio
from curation.errors import Cancelled, UserError
from curation.teacher.config import TeacherConfig, save_teacher
from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.failures import LoudWorkers
from studio.widgets.modals import TracebackModal
from tests.studio.conftest import Note, build_workspace, settle

pytestmark = pytest.mark.timeout(120)


def _errors(notes: list[Note]) -> list[str]:
    return [n.message for n in notes if n.severity == "error"]


def _raise(exc: BaseException):  # type: ignore[no-untyped-def]
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    return fail


async def test_raising_worker_shows_error_and_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: list[Note]
) -> None:
    monkeypatch.setattr("studio.screens.overview.workspace_overview", _raise(RuntimeError("disk on fire\nsecond")))
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=5)) as ws:
        app = DistillStudio(ws)
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            errors = _errors(notes)
            assert len(errors) == 1, errors
            assert errors[0].splitlines() == [
                "Overview: load failed: RuntimeError: disk on fire",
                "ctrl+t shows the traceback",
            ]
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert isinstance(app.screen, TracebackModal)
            shown = str(app.screen.query_one("#traceback-text").render())
            assert "Traceback (most recent call last)" in shown and "RuntimeError: disk on fire" in shown
            assert "in _load" in shown  # the overview worker that raised
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, TracebackModal)


async def test_user_error_is_plain_and_benign_failures_are_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: list[Note]
) -> None:
    monkeypatch.setattr("studio.screens.overview.workspace_overview", _raise(UserError("the workspace says no")))
    # Benign: the records screen's detail worker and the review's progress declare a UserError benign; Cancelled
    # always is.
    monkeypatch.setattr("studio.screens.records.get_record", _raise(UserError("record 1 is gone")))
    monkeypatch.setattr("studio.screens.review.review.progress_by_slice", _raise(UserError("bad filter")))
    monkeypatch.setattr("studio.screens.teacher.synthetic_share", _raise(Cancelled()))  # declared nowhere
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=5)) as ws:
        app = DistillStudio(ws)
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            assert _errors(notes) == ["the workspace says no"]
            await pilot.press("ctrl+t")  # a UserError offers no traceback
            await pilot.pause()
            assert not isinstance(app.screen, TracebackModal)
            for hotkey in ("2", "3", "6"):  # records (record detail), review (progress per slice), teacher (shares)
                await pilot.press(hotkey)
                await settle(pilot)
                await pilot.pause(0.2)  # the detail load is debounced
                await settle(pilot)
            assert _errors(notes) == ["the workspace says no"]
            assert app.last_failure is None


async def test_no_api_key_in_message_or_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: list[Note]
) -> None:
    key = "plainsecret-1234"  # not key-shaped: only the teacher's configured env var can find it
    monkeypatch.setenv("TEST_TEACHER_KEY", key)
    monkeypatch.setattr(
        "studio.screens.teacher.synthetic_share", _raise(RuntimeError(f"401 for key {key} and sk-abcdefghijklmnop"))
    )
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=5)) as ws:
        save_teacher(ws, TeacherConfig("t1", "http://127.0.0.1:9/v1", "m", api_key_env="TEST_TEACHER_KEY"))
        app = DistillStudio(ws, start="teacher")
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            errors = _errors(notes)
            assert len(errors) == 1 and errors[0].startswith(
                "Teacher: load shares failed: RuntimeError: 401 for key ***"
            )
            assert app.last_failure is not None and app.last_failure.traceback is not None
            for text in (errors[0], app.last_failure.traceback):
                assert key not in text and "sk-abcdefghijklmnop" not in text


def test_every_studio_class_with_workers_is_loud() -> None:
    """Textual does not bubble Worker.StateChanged: a class that runs workers without LoudWorkers fails silently."""
    unmixed = []
    for info in pkgutil.walk_packages(studio.__path__, "studio."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__module__ == module.__name__:
                source = inspect.getsource(obj)
                if ("@work(" in source or "run_worker(" in source) and not issubclass(obj, LoudWorkers):
                    unmixed.append(obj.__qualname__)
    assert unmixed == []


async def test_a_screen_that_failed_unexpectedly_is_usable_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: list[Note]
) -> None:
    # The curation preview and the teacher run have their own busy state; an unexpected error must not leave it set.
    monkeypatch.setattr("studio.screens.curation_ops.sl.slice_shares", _raise(RuntimeError("boom in shares")))
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=5)) as ws:
        app = DistillStudio(ws, start="curation")
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            screen = app.screen
            screen.query_one("#cur-ops").highlighted = list(screen.ops).index("slices")
            await pilot.pause()
            await pilot.press("p")
            await settle(pilot)
            await pilot.pause(0.1)
            assert any("boom in shares" in e for e in _errors(notes))
            assert screen.busy is False
            assert "failed; nothing was changed" in str(screen.query_one("#cur-status").render())
