"""Free-text search through the search index: the same answers as reading the records, kept current by every
writer of text, and literal text (``%``, ``_``) found as typed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from curation import search
from curation.browse import RecordFilter, count_records, fetch_page
from curation.importing import import_file, undo_import
from curation.records import finish_batch, insert_records, new_batch
from curation.review import edit
from curation.teacher.store import Answer, write_many
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """An empty workspace (the studio tests' ``ws`` holds fixture records)."""
    with Workspace.open(tmp_path / "search.duckdb") as w:
        yield w


def _add(ws: Workspace, rows: list[tuple[str, str | None]]) -> list[int]:
    with ws.transaction() as cur:
        b = new_batch(cur, "t.jsonl", "log")
        ids = insert_records(cur, b, [{"messages": [{"role": "user", "content": p}], "response": r} for p, r in rows])
        finish_batch(cur, b, n_lines=len(rows), n_imported=len(ids), n_duplicates=0, n_quarantined=0)
    return ids


def _found(ws: Workspace, text: str) -> set[int]:
    rows = fetch_page(ws, RecordFilter(text=text), limit=1000)
    assert count_records(ws, RecordFilter(text=text)) == len(rows)
    return {r.record_id for r in rows}


def test_literal_text_and_case(ws: Workspace) -> None:
    a, b, c = _add(ws, [("Get 50% OFF_now", None), ("get 50x offxnow", "{}"), ("Ünïcode ÄRGER", '{"x": "Straße"}')])
    assert _found(ws, "50% off_") == {a}  # ILIKE took % and _ for wildcards: both matched, or neither
    assert _found(ws, "OFF") == {a, b}
    assert _found(ws, "äRger") == {c} and _found(ws, "STRASSE") == set() and _found(ws, "straße") == {c}
    assert _found(ws, "now" + search.SEPARATOR) == set()  # text holding the separator reads the records directly


def test_same_answers_as_reading_the_records(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    words = ["refund", "Login", "crash", "ORDER", "ship", "ä", "%", "_", "x"]
    rows = [(f"#{i} " + " ".join(rng.choices(words, k=4)), rng.choice([None, " ".join(rng.choices(words, k=3))]))
            for i in range(300)]  # fmt: skip
    ids = _add(ws, rows[:200])
    queries = ["refund", "LOGIN crash", "der s", "% _", "ä", "x x", "ship", "nothing here"]

    def expected(n: int) -> dict[str, set[int]]:
        have = dict(zip(ids, rows[:n], strict=True))
        return {q: {i for i, (p, r) in have.items() if q.lower() in p.lower() or q.lower() in (r or "").lower()}
                for q in queries}  # fmt: skip

    assert {q: _found(ws, q) for q in queries} == expected(200)  # (the first search built the index)
    assert ws.scalar("SELECT count(*) FROM record_search") == 200
    # Records newer than the index: found before any refresh (a read-only workspace never refreshes)...
    monkeypatch.setattr(search, "refresh", lambda ws: None)
    ids += _add(ws, rows[200:])
    assert {q: _found(ws, q) for q in queries} == expected(300)
    monkeypatch.undo()
    assert {q: _found(ws, q) for q in queries} == expected(300)  # ...and after it indexed them
    assert ws.scalar("SELECT count(*) FROM record_search") == 300


def test_index_follows_every_writer_of_text(ws: Workspace, tmp_path: Path) -> None:
    waiting, answered = _add(ws, [("where is my parcel", None), ("reset my password", "use the reset link")])
    assert _found(ws, "parcel") == {waiting}  # the index now holds both
    # A teacher answer fills the empty response.
    ans = Answer("m", "it ships tomorrow", None, "stop", 1, 1, 0.0, 1.0)
    with ws.transaction() as cur:
        write_many(cur, "t", [("k1", ans, [waiting], waiting)], mode="sync", run_id=None)
    assert _found(ws, "SHIPS TOMORROW") == {waiting}
    # A reviewer's edit replaces the response searched: the old text no longer finds it.
    edit(ws, answered, "open Settings, then Security")
    assert _found(ws, "reset link") == set() and _found(ws, "settings, then") == {answered}
    assert _found(ws, "reset my") == {answered}  # the prompt of an edited record still matches
    # An import's answer attached to an earlier prompt, and its undo.
    prompt = write_jsonl(tmp_path / "p.jsonl", [{"messages": [{"role": "user", "content": "refund order 7"}]}])
    import_file(ws, prompt, fmt="finetune")
    first = _found(ws, "order 7")
    answer = log_record("refund order 7", '{"intent": "refund-approved"}', system=None)
    batch = import_file(ws, write_jsonl(tmp_path / "a.jsonl", [answer]))
    assert batch.n_attached == 1 and _found(ws, "refund-approved") == first
    undo_import(ws, batch.batch_id)
    assert _found(ws, "refund-approved") == set() and _found(ws, "order 7") == first
    # Undoing the import of the prompt: its index row stays but matches nothing.
    undo_import(ws, ws.scalar("SELECT min(batch_id) FROM import_batches WHERE status = 'done' AND format = 'finetune'"))
    assert _found(ws, "order 7") == set()
