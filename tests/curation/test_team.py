"""Team review: assignments with overlap, per-reviewer queues, agreement (Cohen, Fleiss), conflicts, comments, labels."""

from __future__ import annotations

import io
import json

import pytest

from curation import review, team
from curation.browse import RecordFilter, count_records, get_record
from curation.errors import UserError
from curation.workspace import Workspace
from tests.studio.conftest import build_workspace


@pytest.fixture
def ws(tmp_path):  # type: ignore[no-untyped-def]
    w = Workspace.open(build_workspace(tmp_path / "w.duckdb", n=30))
    yield w
    w.close()


def test_round_robin_with_overlap_splits_and_doubles_a_share(ws) -> None:
    r = team.assign(ws, ["alice", "bob"], overlap=0.2, seed=1)
    assert r.records == 30 and 2 <= r.overlap <= 12
    assert sum(r.per_reviewer.values()) == 30 + r.overlap
    assert abs(r.per_reviewer["alice"] - r.per_reviewer["bob"]) <= r.overlap + 1
    mine = count_records(ws, RecordFilter(pending_for="alice"))
    assert mine == r.per_reviewer["alice"]
    again = team.assign(ws, ["alice", "bob"], overlap=0.2, seed=1)  # stable, and replaces the rows it covers
    assert again.per_reviewer == r.per_reviewer
    assert ws.scalar("SELECT count(*) FROM review_assignments") == 30 + r.overlap


def test_assign_by_slice_keeps_slices_whole(ws) -> None:
    team.assign(ws, ["alice", "bob", "carol"], by="slice")
    owners = ws.query(
        "SELECT r.slice, count(DISTINCT a.reviewer) FROM review_assignments a JOIN records r USING (record_id) GROUP BY 1"
    )
    assert len(owners) == 3 and all(n == 1 for _, n in owners)
    with pytest.raises(UserError, match="two reviewers"):
        team.assign(ws, ["alice"], overlap=0.1)
    with pytest.raises(UserError, match="unknown assignment mode"):
        team.assign(ws, ["alice"], by="coin")


def test_pending_queue_shrinks_only_for_the_reviewer_who_decides(ws) -> None:
    team.assign(ws, ["alice", "bob"], overlap=1.0)  # every record to both
    review.accept(ws, 1, reviewer="alice")
    assert count_records(ws, RecordFilter(pending_for="alice")) == 29
    assert count_records(ws, RecordFilter(pending_for="bob")) == 30  # alice's verdict leaves bob's queue alone


def test_cohen_kappa_per_slice_and_conflicts(ws) -> None:
    # billing = records 1, 4, 7, ... (i % 3 == 0 in the fixture; ids start at 1)
    billing = [rid for (rid,) in ws.query("SELECT record_id FROM records WHERE slice = 'billing' ORDER BY 1")][:6]
    alice = ["a", "a", "a", "r", "r", "a"]
    bob = ["a", "a", "r", "r", "r", "a"]
    for rid, x, y in zip(billing, alice, bob, strict=True):
        for who, v in (("alice", x), ("bob", y)):
            review.accept(ws, rid, reviewer=who) if v == "a" else review.reject(ws, rid, "wrong", reviewer=who)
    (ag,) = team.agreement_by_slice(ws)
    # po = 5/6; alice 4a/2r, bob 3a/3r: pe = (4*3 + 2*3) / 36 = 0.5; kappa = (5/6 - 1/2) / (1/2) = 2/3
    assert ag.slice == "billing" and ag.method == "cohen" and ag.items == 6 and ag.conflicts == 1
    assert ag.kappa == pytest.approx(2 / 3) and ag.observed == pytest.approx(5 / 6)
    assert team.count_conflicts(ws) == 1
    assert count_records(ws, RecordFilter(conflicts=True)) == 1
    review.undo(ws, reviewer="bob")  # bob's last verdict (record billing[5], 'a') undone: still one conflict
    assert team.count_conflicts(ws) == 1


def test_fleiss_kappa_matches_the_textbook_example() -> None:
    # Fleiss (1971)-style check: 3 raters, perfect agreement -> 1; a worked mixed case against a hand computation.
    assert team.fleiss_kappa([["a", "a", "a"], ["r", "r", "r"]]) == pytest.approx(1.0)
    items = [["a", "a", "r"], ["a", "a", "a"], ["r", "r", "a"], ["r", "r", "r"]]
    # P_i = (1/3, 1, 1/3, 1) -> P = 2/3; p_a = p_r = 1/2 -> Pe = 1/2; kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert team.fleiss_kappa(items) == pytest.approx(1 / 3)
    assert team.cohen_kappa([("a", "a"), ("a", "a")]) is None  # chance agreement 1: undefined, not 1.0


def test_comments_labels_and_export(ws) -> None:
    team.add_comment(ws, 3, "alice", "  ask the billing team  ")
    assert [(c["reviewer"], c["body"]) for c in get_record(ws, 3).comments] == [("alice", "ask the billing team")]
    with pytest.raises(UserError):
        team.add_comment(ws, 3, "alice", " ")
    review.reject(ws, 1, "wrong intent", reviewer="alice")
    review.reject(ws, 2, "wrong intent", reviewer="bob")
    review.reject(ws, 4, "off topic", reviewer="bob")
    assert team.label_choices(ws, "reason", ["bad_json"]) == ["wrong intent", "off topic", "bad_json"]
    assert team.label_choices(ws, "slice") == ["billing", "login", "shipping"]
    out = io.StringIO()
    assert team.export_decisions(ws, out) == 3
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["record_id"] == 1 and first["decision"] == "rejected" and first["reviewer"] == "alice"
