"""Paged queries, filters and the read-only WHERE guard."""

from __future__ import annotations

import pytest

from curation import review
from curation.browse import RecordFilter, count_records, fetch_page, get_record, position_of, slice_names
from curation.errors import UserError


def test_count_and_keyset_paging_cover_every_record_once(ws) -> None:
    assert count_records(ws) == 60
    for order in ("import", "confidence", "slice"):
        seen: list[int] = []
        page = fetch_page(ws, order=order, limit=7)
        while page:
            seen += [r.record_id for r in page]
            page = fetch_page(ws, order=order, after=page[-1].key, limit=7)
        assert sorted(seen) == sorted(set(seen)) and len(seen) == 60
        # backward from the end gives the same tail as forward paging
        tail = fetch_page(ws, order=order, from_end=True, limit=5)
        assert [r.record_id for r in tail] == seen[-5:]
        before = fetch_page(ws, order=order, before=tail[0].key, limit=3)
        assert [r.record_id for r in before] == seen[-8:-5]
        at = fetch_page(ws, order=order, offset=10, limit=3)
        assert [r.record_id for r in at] == seen[10:13]
        assert position_of(ws, RecordFilter(), order, at[0].key) == 10


def test_confidence_order_is_ascending(ws) -> None:
    rows = fetch_page(ws, order="confidence", limit=60)
    confs = [r.confidence for r in rows]
    assert confs == sorted(confs)


def test_filters(ws) -> None:
    assert count_records(ws, RecordFilter(slices=("billing",))) == 20
    assert count_records(ws, RecordFilter(slices=("billing", "login"))) == 40
    assert count_records(ws, RecordFilter(text="NUMBER 7:")) == 1
    assert count_records(ws, RecordFilter(text="100%")) == 0
    assert count_records(ws, RecordFilter(batch_ids=(1,))) == 60
    assert count_records(ws, RecordFilter(batch_ids=(99,))) == 0
    lo = count_records(ws, RecordFilter(max_confidence=0.5))
    hi = count_records(ws, RecordFilter(min_confidence=0.5))
    assert lo > 0 and hi > 0 and lo + hi == 60
    assert count_records(ws, RecordFilter(statuses=("unreviewed",))) == 60
    review.accept(ws, 1, reviewer="t")
    assert count_records(ws, RecordFilter(statuses=("accepted",))) == 1
    assert count_records(ws, RecordFilter(where="record_id <= 10 AND slice = 'login'")) == 3
    assert count_records(ws, RecordFilter(where="json_extract_string(metadata, '$.n')::INT >= 50")) == 10
    assert count_records(ws, RecordFilter(where="record_id IN (SELECT record_id FROM review_events)")) == 1


def test_relabel_moves_effective_slice(ws) -> None:
    review.relabel(ws, 1, "vip", reviewer="t")
    assert "vip" in slice_names(ws)
    assert count_records(ws, RecordFilter(slices=("vip",))) == 1
    assert get_record(ws, 1).original_slice == "billing"


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("record_id = 1; DROP TABLE records", "syntax"),
        ("1=1) UNION SELECT 1 FROM read_csv('/etc/passwd') WHERE (1=1", "table functions"),
        ("prompt IN (SELECT * FROM read_text('/etc/passwd'))", "table functions"),
        ("length(getenv('HOME')) > 0", "getenv"),
        ("record_id IN (SELECT 1 FROM '/etc/hosts.csv')", "tables"),
        ("record_id IN (SELECT 1 FROM other.main.t)", "tables"),
        ("no_such_column = 1", "no_such_column"),
        ("record_id = = 1", "syntax"),
        (";", "empty"),
    ],
)
def test_where_guard_rejects(ws, clause: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        count_records(ws, RecordFilter(where=clause))
    assert expected in str(err.value)
    assert count_records(ws) == 60  # nothing was changed


def test_where_guard_rejects_writes(ws) -> None:
    for clause in (
        "1=1); DELETE FROM records; SELECT (1",
        "1=1); ATTACH 'x.db' AS x; SELECT (1",
        "1=1); COPY records TO 'x.csv'; SELECT (1",
    ):
        with pytest.raises(UserError):
            count_records(ws, RecordFilter(where=clause))
    assert count_records(ws) == 60


def test_detail(ws) -> None:
    d = get_record(ws, 5)
    assert d.messages[-1]["content"] == "ticket number 4: help"
    assert d.logprobs and d.logprobs[0]["top_logprobs"]
    assert d.metadata == {"product_area": "login", "n": 4}
    with pytest.raises(UserError):
        get_record(ws, 10_000)


def test_verifier_filter(ws) -> None:
    with pytest.raises(UserError, match="no verifier results"):
        count_records(ws, RecordFilter(verifier="failed"))
    with ws.transaction() as cur:  # curation's filter_results (schema v4), as a filter run writes it
        cur.execute("INSERT INTO filter_results VALUES (1, 1, false, NULL, 'bad json'), (1, 2, true, NULL, NULL), "
                    "(2, 2, true, NULL, NULL), (2, 3, false, 0.1, 'label'), (1, 3, true, NULL, NULL)")  # fmt: skip
    assert [r.record_id for r in fetch_page(ws, RecordFilter(verifier="failed"))] == [1, 3]
    assert [r.record_id for r in fetch_page(ws, RecordFilter(verifier="passed"))] == [2]
    with pytest.raises(UserError):
        count_records(ws, RecordFilter(verifier="maybe"))
