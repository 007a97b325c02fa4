"""A few snapshot tests of the main screens (pytest-textual-snapshot==1.1.0, textual==8.2.8; SVGs in __snapshots__).

Update after an intended visual change with ``pytest tests/studio/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import review
from curation.workspace import Workspace
from studio.app import DistillStudio
from tests.studio.conftest import build_workspace, settle

pytestmark = pytest.mark.timeout(120)
SIZE = (130, 36)


@pytest.fixture
def snap_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DISTILL_REVIEWER", "snapshot")
    path = build_workspace(tmp_path / "snap.duckdb", n=60)
    ws = Workspace.open(path)
    review.accept(ws, 1)
    review.reject(ws, 2, "wrong intent")
    review.edit(ws, 3, '{"intent": "refund", "urgency": "high", "summary": "edited"}')
    yield ws
    ws.close()


def test_records_screen(snap_compare, snap_ws) -> None:  # type: ignore[no-untyped-def]
    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("down", "down")
        await settle(pilot)

    assert snap_compare(DistillStudio(snap_ws, start="records"), terminal_size=SIZE, run_before=ready)


def test_review_screen(snap_compare, snap_ws) -> None:  # type: ignore[no-untyped-def]
    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)

    assert snap_compare(DistillStudio(snap_ws, start="review"), terminal_size=SIZE, run_before=ready)


def test_overview_screen(snap_compare, snap_ws) -> None:  # type: ignore[no-untyped-def]
    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)

    assert snap_compare(DistillStudio(snap_ws, start="overview"), terminal_size=SIZE, run_before=ready)
