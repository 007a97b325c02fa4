"""Review decisions persist, fold correctly, and undo (single and bulk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import review
from curation.browse import RecordFilter, count_records, get_record
from curation.errors import UserError
from curation.workspace import Workspace


def test_each_action_persists_across_reopen(ws_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILL_REVIEWER", "ana")
    with Workspace.open(ws_path) as ws:
        review.accept(ws, 1)
        review.reject(ws, 2, "wrong intent")
        review.edit(ws, 3, '{"intent": "refund"}')
        review.relabel(ws, 4, "vip")
        review.queue(ws, 5, "check later")
    with Workspace.open(ws_path) as ws:
        got = {d.record_id: d for d in (get_record(ws, i) for i in range(1, 6))}
        assert got[1].status == "accepted" and got[1].reviewer == "ana" and got[1].reviewed_at is not None
        assert got[2].status == "rejected" and got[2].reason == "wrong intent"
        assert got[3].status == "accepted" and got[3].response == '{"intent": "refund"}'
        assert got[3].original_response.startswith('{"intent": "track"')  # teacher output kept
        assert got[4].slice == "vip" and got[4].status == "needs_review"
        assert got[5].status == "needs_review" and got[5].reason == "check later"
        assert ws.scalar("SELECT count(*) FROM review_events") == 5


def test_undo_last_and_specific(ws) -> None:
    review.accept(ws, 1, reviewer="a")
    e2 = review.reject(ws, 1, "bad", reviewer="a")
    review.edit(ws, 2, "fixed", reviewer="b")
    assert review.undo(ws, reviewer="a").action == "reject"
    assert get_record(ws, 1).status == "accepted"
    assert review.undo(ws, e2.event_id).count == 0  # already undone
    assert review.undo(ws).action == "edit"
    d = get_record(ws, 2)
    assert d.status == "unreviewed" and d.response == d.original_response
    assert review.undo(ws).action == "accept"
    assert review.undo(ws).count == 0
    assert ws.scalar("SELECT count(*) FROM reviews") == 0
    assert ws.scalar("SELECT count(*) FROM review_events WHERE undone") == 3


def test_bulk_and_bulk_undo(ws) -> None:
    review.accept(ws, 1, reviewer="a")
    d = review.bulk_reject(ws, RecordFilter(slices=("billing",)), "off-topic", reviewer="a")
    assert d.count == 20 and d.bulk_id is not None
    assert count_records(ws, RecordFilter(statuses=("rejected",))) == 20
    d2 = review.bulk_relabel(ws, RecordFilter(statuses=("rejected",), max_confidence=0.5), "junk", reviewer="a")
    assert 0 < d2.count < 20
    assert count_records(ws, RecordFilter(slices=("junk",))) == d2.count
    assert review.bulk_accept(ws, RecordFilter(slices=("nope",))).count == 0
    u = review.undo(ws)
    assert u.action == "relabel" and u.count == d2.count
    u = review.undo(ws)
    assert u.action == "reject" and u.count == 20
    assert count_records(ws, RecordFilter(statuses=("rejected",))) == 0
    assert get_record(ws, 1).status == "accepted"  # the single decision before the bulk survives


def test_bad_input_changes_nothing(ws) -> None:
    with pytest.raises(UserError):
        review.reject(ws, 1, "  ")
    with pytest.raises(UserError):
        review.accept(ws, 999)
    with pytest.raises(UserError):
        review.edit(ws, 1, "")
    assert ws.scalar("SELECT count(*) FROM review_events") == 0


def test_progress_by_slice(ws) -> None:
    review.accept(ws, 1, reviewer="a")
    review.reject(ws, 4, "x", reviewer="a")
    review.queue(ws, 7, reviewer="a")
    prog = {p.slice: p for p in review.progress_by_slice(ws)}
    assert prog["billing"].reviewed == 2 and prog["billing"].remaining == 18
    assert prog["billing"].accepted == 1 and prog["billing"].rejected == 1
    assert prog["login"].reviewed == 0


def test_reviewer_name_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILL_REVIEWER", "zoe")
    assert review.reviewer_name() == "zoe"
    monkeypatch.delenv("DISTILL_REVIEWER")
    assert review.reviewer_name()


def test_decisions_survive_kill_9(ws_path: Path) -> None:
    """Each decision is committed on its own: a process killed right after keeps every one of them."""
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import os, signal, sys\n"
        "from curation import review\nfrom curation.workspace import Workspace\n"
        "ws = Workspace.open(sys.argv[1])\n"
        "review.accept(ws, 1, reviewer='k')\nreview.reject(ws, 2, 'late', reviewer='k')\n"
        "review.edit(ws, 3, 'new answer', reviewer='k')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ws_path)], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
    )
    assert proc.returncode == -signal.SIGKILL
    with Workspace.open(ws_path) as ws:
        assert get_record(ws, 1).status == "accepted"
        assert get_record(ws, 2).reason == "late"
        assert get_record(ws, 3).response == "new answer"
