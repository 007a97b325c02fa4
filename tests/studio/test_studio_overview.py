"""The overview chart compares production with dataset versions and shows the synthetic share per slice."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from curation.datasets import Member, create_version
from curation.overview import dataset_comparison, total_variation, workspace_overview
from curation.records import finish_batch, insert_records, new_batch
from curation.workspace import Workspace
from studio.app import DistillStudio
from tests.studio.conftest import build_workspace, make_rows, settle

pytestmark = pytest.mark.timeout(120)


def _chart_text(app: DistillStudio) -> str:
    console = Console(width=160, file=io.StringIO(), record=True)
    console.print(app.screen.query_one("#overview-chart").content)
    return console.export_text()


def _add_synthetic(ws: Workspace, n: int) -> None:
    rows = [dict(r, origin="synthetic", slice="billing") for r in make_rows(n, start=1000)]
    with ws.transaction() as cur:
        b = new_batch(cur, "synthetic", "synthetic")
        ids = insert_records(cur, b, rows)
        finish_batch(cur, b, n_lines=n, n_imported=len(ids), n_duplicates=0, n_quarantined=0)


def test_total_variation() -> None:
    assert total_variation({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0
    assert total_variation({"a": 1.0}, {"b": 1.0}) == 1.0
    assert total_variation({"a": 0.75, "b": 0.25}, {"a": 0.25, "b": 0.75}) == pytest.approx(0.5)


async def test_chart_compares_production_with_versions_and_shows_synthetic(tmp_path: Path) -> None:
    # 60 production records: 20 per slice (billing, login, shipping); + 10 synthetic billing records.
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=60)) as ws:
        _add_synthetic(ws, 10)
        slices = {r[0]: r[1] for r in ws.query("SELECT record_id, slice FROM records WHERE origin = 'import'")}
        billing = [i for i, s in slices.items() if s == "billing"][:10]
        login = [i for i, s in slices.items() if s == "login"][:10]
        # "old": billing only. "new": billing 10 x weight 1, login 10 x weight 3 -> billing 25 %, login 75 %.
        create_version(ws, "old", [Member(i, "train", "billing") for i in billing], [], split=None)
        create_version(
            ws,
            "new",
            [Member(i, "train", "billing") for i in billing] + [Member(i, "train", "login", weight=3.0) for i in login],
            [],
            split=None,
        )
        # Production shares ignore synthetic records: a third each. TV to "new" = (|1/3-1/4| + |1/3-3/4| + 1/3) / 2.
        expected_new = (abs(1 / 3 - 0.25) + abs(1 / 3 - 0.75) + 1 / 3) / 2
        o = workspace_overview(ws)
        comparison = dataset_comparison(ws, o.slices)
        assert comparison is not None and comparison.version == "new"
        assert comparison.tv_distance == pytest.approx(expected_new)

        app = DistillStudio(ws, start="overview")
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            text = _chart_text(app)
            assert "██ production   ██ dataset new" in text
            assert f"total-variation distance {expected_new:.3f}" in text
            billing_line = next(line for line in text.splitlines() if line.strip().startswith("billing"))
            # billing: 30 records (10 synthetic = 33.3 %), 33.3 % of production, 25.0 % of "new".
            assert "30" in billing_line and "33.3%" in billing_line and "25.0%" in billing_line
            counts = str(app.screen.query_one("#overview-counts").render())
            assert "synthetic inputs" in counts
            await pilot.press("v")  # the next (older) version: billing only -> TV = 1 - 1/3
            await settle(pilot)
            text = _chart_text(app)
            assert "dataset old" in text and f"total-variation distance {2 / 3:.3f}" in text
            await pilot.press("v")  # wraps round to the newest
            await settle(pilot)
            assert "dataset new" in _chart_text(app)


async def test_chart_without_versions_says_how_to_make_one(tmp_path: Path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=9)) as ws:
        app = DistillStudio(ws, start="overview")
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            text = _chart_text(app)
            assert "██ production   ██ accepted" in text and "no dataset version yet" in text
            assert "synth" not in text  # no synthetic records, no column
            await pilot.press("v")
            await settle(pilot)
            assert app.screen.comparison is None
