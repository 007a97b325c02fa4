from __future__ import annotations

import pytest

from curation.datasets import get_version, version_members
from curation.errors import UserError
from curation.rebalance import Target, apply_rebalance, plan_rebalance, production_shares
from curation.slices import define_by_field, slice_shares, total_variation


def test_slice_shares_and_field_slicing(ws):
    shares = {s.slice: s.n for s in slice_shares(ws)}
    assert shares == {"billing": 12, "login": 8, "shipping": 4, "security": 2}
    assert define_by_field(ws, "lang", "metadata.lang") == 26
    by_lang = {s.slice: s.n for s in slice_shares(ws, "lang")}
    assert set(by_lang) == {"en", "de"} and sum(by_lang.values()) == 26


def test_explicit_shares_downsample_and_upweight(ws):
    t = Target("shares", shares={"billing": 0.25, "login": 0.25, "shipping": 0.25, "security": 0.25})
    plan = plan_rebalance(ws, t, seed=1, max_factor=10)
    rows = {r.slice: r for r in plan.rows}
    assert rows["billing"].action == "down-sample" and rows["billing"].after_n == 6  # 0.25 * 26 = 6.5 -> 6
    assert rows["security"].action == "up-weight" and rows["security"].after_n == 2
    assert plan.tv_after < plan.tv_before
    assert plan.tv_after == pytest.approx(total_variation({r.slice: r.after_share for r in plan.rows}, t.shares))


def test_plan_is_deterministic_under_seed(ws):
    t = Target("shares", shares={"billing": 0.1})
    a = plan_rebalance(ws, t, seed=7)
    b = plan_rebalance(ws, t, seed=7)
    c = plan_rebalance(ws, t, seed=8)
    ids = lambda p: sorted(m.record_id for m in p.members if m.slice == "billing")  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)


def test_duplicate_mode_caps_copies(ws):
    plan = plan_rebalance(ws, Target("min_count", min_count=9), mode="duplicate", max_factor=3, seed=0)
    sec = [m for m in plan.members if m.slice == "security"]
    assert sum(m.copies for m in sec) == 6  # 2 records, needs 4.5x, capped at 3x
    assert any("capped" in w for w in plan.warnings)
    ship = [m for m in plan.members if m.slice == "shipping"]
    assert sum(m.copies for m in ship) == 9


def test_production_target_and_apply_writes_version(ws):
    with ws.transaction() as cur:  # a record the reviewer rejected never enters a version
        cur.execute("INSERT INTO reviews VALUES (1, 'rejected', 'bad', NULL, NULL, 'ann', now())")
    prod = production_shares(ws)
    assert prod["billing"] == pytest.approx(12 / 26)
    plan = plan_rebalance(ws, Target("production"), seed=0)
    assert plan.pool.excluded == {"rejected": 1}
    info = apply_rebalance(ws, plan, "v1")
    assert get_version(ws, "v1").n_train == info.n_train == len(version_members(ws, "v1"))
    assert 1 not in {m.record_id for m in version_members(ws, "v1")}
    assert ws.scalar("SELECT count(*) FROM records") == 26  # nothing changed or deleted
    with pytest.raises(UserError, match="immutable"):
        apply_rebalance(ws, plan, "v1")


def test_bad_shares_refused(ws):
    with pytest.raises(UserError):
        plan_rebalance(ws, Target("shares", shares={"billing": 0.8, "login": 0.5}))


def test_production_window_changes_the_target(ws):
    from datetime import datetime

    all_time = production_shares(ws)
    window = production_shares(ws, since=datetime(2026, 1, 20), until=datetime(2026, 1, 29))
    n = ws.scalar("SELECT count(*) FROM records WHERE logged_at >= '2026-01-20' AND logged_at < '2026-01-29'")
    assert 0 < n < 26 and window != all_time
    assert sum(window.values()) == pytest.approx(1.0)
    with pytest.raises(UserError):
        production_shares(ws, since=datetime(2030, 1, 1))
