from __future__ import annotations

import pytest

from curation.effective import active_slicing
from curation.errors import UserError
from curation.rebalance import Target, plan_rebalance
from curation.slices import (
    cluster_prompts,
    define_by_expr,
    distinctive_terms,
    list_slicings,
    preview_expr,
    slice_shares,
    store_clusters,
    use_slicing,
)


def test_sql_expression_slicing_and_reviewer_override_wins(ws):
    expr = "CASE WHEN length(prompt) > 40 THEN 'long' ELSE 'short' END"
    assert dict(preview_expr(ws, expr)).keys() == {"long", "short"}
    assert ws.scalar("SELECT count(*) FROM slicings") == 0  # preview stores nothing
    define_by_expr(ws, "len", expr)
    with ws.transaction() as cur:
        cur.execute("INSERT INTO reviews VALUES (1, 'accepted', NULL, NULL, 'vip', 'ann', now())")
    shares = {s.slice: s.n for s in slice_shares(ws, "len")}
    assert shares["vip"] == 1 and sum(shares.values()) == 26
    use_slicing(ws, "len")
    assert active_slicing(ws) == "len" and list_slicings(ws)[0]["active"]
    plan = plan_rebalance(ws, Target("shares", shares={"long": 0.5, "short": 0.5}), slicing="len")
    assert {r.slice for r in plan.rows} == {"long", "short", "vip"}
    with pytest.raises(UserError):
        preview_expr(ws, "no_such_column + 1")
    with pytest.raises(UserError):
        use_slicing(ws, "missing")


def test_distinctive_terms_names_clusters():
    names = distinctive_terms(
        [["refund my refund please", "refund the invoice"], ["password reset", "reset my password now"]], top=2
    )
    assert names[0].startswith("refund") and names[1] in ("password/reset", "reset/password")


def test_embedding_clusters_are_seeded_and_named(ws, minilm):
    a = cluster_prompts(ws, "topics", 4, seed=0)
    b = cluster_prompts(ws, "topics", 4, seed=0)
    assert a.labels == b.labels and a.names == b.names
    assert sum(a.sizes) == 26 and len(set(a.names)) == 4
    # the two password prompts land together, under a name drawn from their words
    lab = dict(zip(a.record_ids, a.labels, strict=True))
    assert lab[13] == lab[14]
    assert store_clusters(ws, a) == 26
    assert {s.slice for s in slice_shares(ws, "topics")} == set(a.names)
