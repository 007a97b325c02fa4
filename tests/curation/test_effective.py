"""Records as they are now (curation.effective): every reader agrees on a record's slice under the active slicing.

The 40-record case: records.slice splits them a/b (first and second half), the active slicing splits them by the
parity of their number (even/odd, 10 of each half). The studio's filter, teacher selection, synth examples,
slice_shares, stats and the overview's production-vs-version distance must all see even/odd, 20 and 20.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.browse import RecordFilter, count_records, fetch_page, get_record, slice_names
from curation.errors import UserError
from curation.overview import dataset_comparison, workspace_overview
from curation.pool import load_pool
from curation.rebalance import snapshot_version
from curation.records import finish_batch, insert_records, new_batch
from curation.review import edit, relabel
from curation.slices import define_by_field, slice_shares, use_slicing
from curation.stats import slice_counts
from curation.teacher.selection import Selection, select_records
from curation.teacher.synth import _examples, synthetic_share
from curation.workspace import Workspace
from distill.cli import main
from studio.app import DistillStudio
from studio.widgets.record_list import RecordList
from tests.studio.conftest import settle


def build_40(path: Path) -> Workspace:
    """40 answered records, records.slice a (1-20) / b (21-40), and the active slicing ``parity`` (even/odd)."""
    rows = [
        {
            "messages": [{"role": "user", "content": f"question number {i}"}],
            "response": f"answer {i}",
            "slice": "a" if i <= 20 else "b",
            "metadata": {"parity": "even" if i % 2 == 0 else "odd"},
        }
        for i in range(1, 41)
    ]
    ws = Workspace.open(path)
    with ws.transaction() as cur:
        b = new_batch(cur, "forty.jsonl", "log")
        ids = insert_records(cur, b, rows)
        finish_batch(cur, b, n_lines=40, n_imported=len(ids), n_duplicates=0, n_quarantined=0)
    assert define_by_field(ws, "parity", "metadata.parity") == 40
    use_slicing(ws, "parity")
    return ws


@pytest.fixture
def ws40(tmp_path: Path):  # type: ignore[no-untyped-def]
    ws = build_40(tmp_path / "forty.duckdb")
    yield ws
    ws.close()


def test_every_reader_sees_the_active_slicing(ws40: Workspace) -> None:
    ws = ws40
    even = RecordFilter(slices=("even",))
    # the studio's slice filter, its page rows and the detail pane
    assert count_records(ws, even) == 20 and count_records(ws, RecordFilter(slices=("a",))) == 0
    page = fetch_page(ws, even, limit=100)
    assert [r.record_id for r in page] == list(range(2, 41, 2)) and {r.slice for r in page} == {"even"}
    assert slice_names(ws) == ["even", "odd"]
    detail = get_record(ws, 2)
    assert (detail.slice, detail.original_slice) == ("even", "even")
    # a user's WHERE over the same columns, and the slice order
    assert count_records(ws, RecordFilter(where="slice = 'even' AND original_slice = 'even'")) == 20
    assert fetch_page(ws, order="slice", limit=1)[0].slice == "even"
    # teacher selection and synth's examples for the slice
    assert [rid for rid, _ in select_records(ws, "t", Selection(missing=False, slice="even"))] == list(range(2, 41, 2))
    assert (
        len(select_records(ws, "t", Selection(missing=False, where="slice = 'even' AND status = 'unreviewed'"))) == 20
    )
    examples = _examples(ws, "even", 40, "seed")
    assert len(examples) == 20 and all(rid % 2 == 0 for rid, _, _ in examples)
    # slice shares (default: the active slicing), synthetic share, stats
    assert {s.slice: s.n for s in slice_shares(ws)} == {"even": 20, "odd": 20}
    assert {s.slice: s.n for s in slice_shares(ws, "parity")} == {"even": 20, "odd": 20}
    assert {s.slice: s.records for s in synthetic_share(ws)} == {"even": 20, "odd": 20}
    assert {s["slice"]: s["records"] for s in slice_counts(ws)} == {"even": 20, "odd": 20}
    # the pool and a version snapshotted from these very records: the overview finds no distance
    assert load_pool(ws).slicing == "parity"
    snapshot_version(ws, "v1", slicing="parity")
    ov = workspace_overview(ws)
    assert {s.slice: s.records for s in ov.slices} == {"even": 20, "odd": 20}
    cmp = dataset_comparison(ws, ov.slices)
    assert cmp is not None and cmp.tv_distance == pytest.approx(0.0)


def test_reviewer_override_and_edit_win_over_the_slicing(ws40: Workspace) -> None:
    ws = ws40
    relabel(ws, 2, "vip")
    edit(ws, 4, "better answer")
    assert count_records(ws, RecordFilter(slices=("even",))) == 19
    assert count_records(ws, RecordFilter(slices=("vip",))) == 1
    detail = get_record(ws, 2)
    assert (detail.slice, detail.original_slice) == ("vip", "even")
    assert {s.slice: s.n for s in slice_shares(ws)} == {"even": 19, "odd": 20, "vip": 1}
    assert [rid for rid, _ in select_records(ws, "t", Selection(missing=False, slice="vip"))] == [2]
    assert count_records(ws, RecordFilter(where="response = 'better answer' AND edited")) == 1
    # with no slicing in use, records' own slice applies again (the relabel still wins)
    use_slicing(ws, None)
    assert {s.slice: s.n for s in slice_shares(ws)} == {"a": 19, "b": 20, "vip": 1}
    assert count_records(ws, RecordFilter(slices=("a",))) == 19


def _through_join(ws: Workspace, slicing: str) -> dict[int, str]:
    """The reference: each record's slice under ``slicing`` read from ``slicing_assignments`` (no review)."""
    rows = ws.query(
        "SELECT r.record_id, coalesce(sa.slice, r.slice) FROM records r "
        "LEFT JOIN slicing_assignments sa ON sa.record_id = r.record_id AND sa.slicing = ?",
        [slicing],
    )
    return dict(rows)


def _now(ws: Workspace, slicing: str | None = None) -> dict[int, str]:
    from curation.effective import effective_sql

    base, params = effective_sql(ws, slicing)
    return dict(ws.query(f"SELECT record_id, original_slice FROM ({base}) b", params))


def test_the_records_copy_of_the_active_slicing_follows_every_change(ws40: Workspace) -> None:
    from curation.effective import effective_sql
    from curation.slices import ClusterSlicing, define_by_expr, store_clusters

    ws = ws40
    record_cols = {r[0] for r in ws.query("SELECT column_name FROM (DESCRIBE records)")}
    base, params = effective_sql(ws)
    cols = {r[0] for r in ws.query(f"SELECT column_name FROM (DESCRIBE ({base}))", params)}
    assert record_cols - {"active_slice"} <= cols and "active_slice" not in cols
    assert {"original_response", "confidence", "status", "edited", "original_slice", "seen_at"} <= cols
    # the slicing in use is read from the records' copy (no join, no parameter); it equals its assignments
    assert params == [] and "slicing_assignments" not in base
    assert _now(ws) == _through_join(ws, "parity")
    # another named slicing is read through the join
    define_by_expr(ws, "half", "CASE WHEN record_id <= 20 THEN 'low' ELSE 'high' END")
    assert effective_sql(ws, "half")[1] == ["half"] and _now(ws, "half") == _through_join(ws, "half")
    assert _now(ws) == _through_join(ws, "parity")  # defining another one leaves the copy alone
    # redefining the slicing in use refreshes the copy in the same transaction
    define_by_expr(ws, "parity", "CASE WHEN record_id % 4 = 0 THEN 'four' ELSE 'other' END")
    assert _now(ws) == _through_join(ws, "parity") and count_records(ws, RecordFilter(slices=("four",))) == 10
    # records added later have no assignment: their own slice, as through the join
    with ws.transaction() as cur:
        b = new_batch(cur, "more.jsonl", "log")
        insert_records(cur, b, [{"messages": [{"role": "user", "content": "late"}], "slice": "b"}])
    assert _now(ws) == _through_join(ws, "parity") and _now(ws)[41] == "b"
    # clusters stored under the name in use, then switching to another slicing and to none
    ids = list(range(1, 42))
    store_clusters(ws, ClusterSlicing("parity", 2, 0, None, ["x", "y"], [21, 20], ids, [i % 2 for i in ids]))
    assert _now(ws) == _through_join(ws, "parity") and set(_now(ws).values()) == {"x", "y"}
    use_slicing(ws, "half")
    assert _now(ws) == _through_join(ws, "half") and count_records(ws, RecordFilter(slices=("low",))) == 20
    use_slicing(ws, None)
    assert _now(ws) == dict(ws.query("SELECT record_id, slice FROM records"))
    assert ws.scalar("SELECT count(active_slice) FROM records") == 0
    with pytest.raises(UserError, match="no slicing named"):
        slice_shares(ws, "nope")


def test_migration_copies_the_slicing_in_use(tmp_path: Path) -> None:
    import duckdb

    from curation.migrations import migrate

    path = tmp_path / "v10.duckdb"
    build_40(path).close()
    con = duckdb.connect(str(path))  # back before v11: the copy does not exist yet
    con.execute("ALTER TABLE records DROP COLUMN active_slice")
    con.execute("DELETE FROM schema_migrations WHERE version = 11")
    con.close()
    con = duckdb.connect(str(path))
    assert migrate(con) == [11]
    con.close()
    with Workspace.open(path) as ws:
        assert _now(ws) == _through_join(ws, "parity")
        assert count_records(ws, RecordFilter(slices=("even",))) == 20


async def test_records_screen_slice_filter_uses_the_active_slicing(tmp_path: Path) -> None:
    with build_40(tmp_path / "forty.duckdb") as ws:
        app = DistillStudio(ws, start="records")
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            lst = app.screen.query_one(RecordList)
            assert lst.total == 40
            await pilot.click("#f-slice")
            await pilot.press(*"even", "enter")
            await settle(pilot)
            assert lst.total == 20 and lst.is_settled()
            assert {lst._rows[i].slice for i in range(20)} == {"even"}


def test_stats_reports_reviews_per_slice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from curation.review import accept, queue, reject

    with build_40(tmp_path / "forty.duckdb") as ws:
        accept(ws, 2)
        reject(ws, 4, "wrong")
        edit(ws, 6, "fixed")
        queue(ws, 8, "check")
        queue(ws, 1, "check")
        relabel(ws, 3, "even")  # an odd record moved to even: a relabel alone leaves it needing review
        path = str(ws.path)
    assert main(["stats", "-w", path, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["slicing"] == "parity"
    by = {s["slice"]: s for s in doc["slices"]}
    keys = ("records", "accepted", "rejected", "needs_review", "edited", "unreviewed")
    assert {k: by["even"][k] for k in keys} == {
        "records": 21, "accepted": 2, "rejected": 1, "needs_review": 2, "edited": 1, "unreviewed": 16,
    }  # fmt: skip
    assert {k: by["odd"][k] for k in keys} == {
        "records": 19, "accepted": 0, "rejected": 0, "needs_review": 1, "edited": 0, "unreviewed": 18,
    }  # fmt: skip
    assert main(["stats", "-w", path]) == 0
    out = capsys.readouterr().out
    assert "Slices (slicing parity)" in out and "Reviews" in out
    line = next(ln for ln in out.splitlines()[out.splitlines().index("Reviews") :] if ln.startswith("even"))
    assert line.split() == ["even", "2", "1", "2", "1", "16"]
