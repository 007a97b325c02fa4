"""Import from the studio: detection and preview, a real import with progress, cancellation, quarantine summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.workspace import Workspace
from studio.app import DistillStudio
from tests.studio.conftest import settle

pytestmark = pytest.mark.timeout(120)  # a hung worker fails the test instead of the whole run


def write_log(path: Path, n: int, bad: int = 1) -> Path:
    """A production log in the logging-proxy shape, with ``bad`` broken lines at the end."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            line = {
                "request": {"model": "teacher", "messages": [{"role": "user", "content": f"my order {i} is late"}]},
                "response": {"choices": [{"message": {"role": "assistant", "content": f'{{"intent": "track{i}"}}'}}]},
                "metadata": {"product_area": ["shipping", "billing"][i % 2]},
            }
            fh.write(json.dumps(line) + "\n")
        for _ in range(bad):
            fh.write("{not json\n")
    return path


async def _open_import(app: DistillStudio, pilot, file: Path) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot)
    app.screen.query_one("#import-path").value = str(file)
    await pilot.click("#import-check")
    await settle(pilot)


async def test_import_with_preview_progress_and_quarantine(tmp_path: Path) -> None:
    log = write_log(tmp_path / "prod.jsonl", 40)
    with Workspace.open(tmp_path / "w.duckdb") as ws:
        app = DistillStudio(ws, start="import")
        async with app.run_test(size=(150, 45)) as pilot:
            await _open_import(app, pilot, log)
            screen = app.screen
            assert "format log" in str(screen.query_one("#import-detected").render())
            assert screen.query_one("#import-slice").value == "metadata.product_area"
            preview = screen.query_one("#import-preview")
            assert preview.row_count == 20
            assert preview.get_row_at(0)[1] == "shipping"
            await pilot.click("#import-start")
            await settle(pilot)
            summary = str(screen.query_one("#import-summary").render())
            assert "40 imported of 41 lines" in summary and "1 quarantined" in summary
            assert "not valid JSON" in summary
            assert screen.query_one("#import-progress").percentage == 1.0
            assert app.data_version == 1
            await pilot.press("1")  # the overview shows the new batch and the bad line
            await settle(pilot)
            assert app.screen.query_one("#batches").row_count == 1
            assert app.screen.query_one("#quarantine").row_count == 1
        assert ws.scalar("SELECT count(*) FROM records") == 40
        assert ws.query("SELECT slice, count(*) FROM records GROUP BY 1 ORDER BY 1") == [
            ("billing", 20),
            ("shipping", 20),
        ]


async def test_cancel_leaves_nothing(tmp_path: Path) -> None:
    log = write_log(tmp_path / "prod.jsonl", 2000)
    with Workspace.open(tmp_path / "w.duckdb") as ws:
        app = DistillStudio(ws, start="import")
        async with app.run_test(size=(150, 45)) as pilot:
            await _open_import(app, pilot, log)
            screen = app.screen
            # Start and cancel in one event-loop step: the worker thread sees the cancel at its first checkpoint.
            screen.action_start()
            screen.action_cancel_import()
            await settle(pilot)
            assert "cancelled" in str(screen.query_one("#import-summary").render())
            assert not screen.query_one("#import-start").disabled  # ready to try again
            assert ws.scalar("SELECT count(*) FROM records") == 0
            assert ws.scalar("SELECT count(*) FROM import_batches") == 0
            await pilot.click("#import-start")
            await settle(pilot)
            assert ws.scalar("SELECT count(*) FROM records") == 2000


async def test_bad_path_is_reported(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "w.duckdb") as ws:
        app = DistillStudio(ws, start="import")
        async with app.run_test(size=(150, 45)) as pilot:
            await _open_import(app, pilot, tmp_path / "nope.jsonl")
            assert "is not a file" in str(app.screen.query_one("#import-summary").render())
            assert app.screen.query_one("#import-start").disabled


async def test_path_field_has_focus_so_a_path_can_be_typed_at_once(tmp_path: Path) -> None:
    file = write_log(tmp_path / "logs.jsonl", 3, bad=0)
    with Workspace.open(tmp_path / "w.duckdb") as ws:
        app = DistillStudio(ws, start="import")  # what `distill studio NEW.duckdb` opens on
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            assert app.focused is app.screen.query_one("#import-path")
            await pilot.press(*str(file), "enter")
            await settle(pilot)
            assert "format log" in str(app.screen.query_one("#import-detected").render())
