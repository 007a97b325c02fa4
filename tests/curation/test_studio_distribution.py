"""The distribution view of the curation screen, driven from the keyboard (pilot)."""

from __future__ import annotations

from textual.app import App
from textual.widgets import OptionList, Static
from textual.worker import WorkerCancelled

from curation.confidence_dist import sample_source
from studio.screens.curation import CurationScreen
from studio.screens.distribution import DistributionScreen
from tests.curation.conftest import build_workspace
from tests.curation.test_distributions import _conf_rows


class _Host(App[None]):
    def __init__(self, ws) -> None:
        super().__init__()
        self.ws = ws

    def on_mount(self) -> None:
        self.push_screen(CurationScreen(self.ws))


async def _settle(pilot, screen: DistributionScreen) -> None:
    for _ in range(200):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:  # a page fetch superseded by the next (exclusive): expected
            pass
        await pilot.pause()
        if not screen.busy and screen.dist is not None:
            return
        await pilot.pause(0.05)


def _text(screen, sel: str) -> str:
    return str(screen.query_one(sel, Static).render())


async def test_dedupe_threshold_chosen_from_the_similarity_distribution(ws, minilm):
    app = _Host(ws)
    async with app.run_test(size=(160, 48)) as pilot:
        cur = app.screen
        cur.query_one("#cur-ops", OptionList).highlighted = list(cur.ops).index("dedupe")
        await pilot.pause()
        await pilot.press("d")
        dist_screen = app.screen
        assert isinstance(dist_screen, DistributionScreen)
        await _settle(pilot, dist_screen)
        assert dist_screen.threshold == 0.85
        removed = sum(dist_screen.dist.removed_at(0.85).values())
        assert f"threshold 0.85 removes {removed:,} of 26" in dist_screen.summary
        await pilot.press("v")
        assert dist_screen.slice_view == dist_screen.dist.slices[0]
        await pilot.press("left", "left", "left", "left", "left")
        assert dist_screen.threshold == 0.80
        assert "threshold 0.80 removes" in dist_screen.summary
        # Bands: the highlighted one's pairs are shown a page at a time, read in a worker.
        bands = dist_screen.query_one("#dist-bands", OptionList)
        assert bands.option_count == 6
        with_pairs = next(k for k, b in enumerate(dist_screen.dist.bands()) if b.n_pairs)
        bands.highlighted = with_pairs
        await _settle(pilot, dist_screen)
        assert dist_screen.band == with_pairs and dist_screen.rows
        assert dist_screen.rows[0].similarity >= dist_screen.dist.bands()[with_pairs].lo - 1e-6
        await pilot.press("u")
        await pilot.pause()
        assert app.screen is cur and cur.form("dedupe").raw("threshold") == "0.8"
        assert "threshold set to 0.8" in _text(cur, "#cur-status")
        cur.form("dedupe").set_value("kind", "exact")
        await pilot.press("d")
        assert app.screen is cur and "for semantic dedupe" in _text(cur, "#cur-status")


async def test_confidence_view_queues_the_review_sample_and_sets_the_minimum(tmp_path):
    w = build_workspace(tmp_path / "c.duckdb", rows=_conf_rows())
    app = _Host(w)
    async with app.run_test(size=(160, 48)) as pilot:
        cur = app.screen
        cur.query_one("#cur-ops", OptionList).highlighted = list(cur.ops).index("rebalance")
        await pilot.pause()
        await pilot.press("d")
        assert app.screen is cur and "Dedupe (similarity) and Filter (confidence)" in _text(cur, "#cur-status")
        cur.query_one("#cur-ops", OptionList).highlighted = list(cur.ops).index("filter")
        await pilot.pause()
        cur.form("filter").set_value("confidence", "min_logprob")
        await pilot.press("d")
        view = app.screen
        assert isinstance(view, DistributionScreen)
        await _settle(pilot, view)
        first_edge = view.dist.bands[1].lo
        assert view.threshold == first_edge  # starts at the lowest band's edge
        assert f"fails {view.dist.bands[0].n:,} of 60" in view.summary
        await pilot.press("right")
        assert view.threshold > first_edge
        await pilot.press("s")
        await _settle(pilot, view)
        n = w.scalar("SELECT count(*) FROM review_events WHERE reviewer = ?", [sample_source("min_logprob")])
        assert n == sum(min(30, b.n) for b in view.dist.bands) == 60
        assert all(b.sampled == b.n for b in view.dist.bands)  # reloaded after queueing
        assert "rev 0/" in str(view.query_one("#dist-bands", OptionList).get_option_at_index(0).prompt)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is cur and cur.form("filter").raw("min") == ""  # esc: back without a threshold
        await pilot.press("d")
        view = app.screen
        await _settle(pilot, view)
        await pilot.press("u")
        await pilot.pause()
        assert app.screen is cur and float(cur.form("filter").raw("min")) == view.threshold
    w.close()
