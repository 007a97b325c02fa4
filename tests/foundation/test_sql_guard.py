"""User SQL (filters, `generate --where`, slicing expressions) only reads rows: an allow-list of functions, one
expression, spliced where it was checked."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from curation.browse import RecordFilter, count_records
from curation.errors import UserError
from curation.importing import import_file
from curation.slices import define_by_expr, preview_expr
from curation.teacher.selection import Selection, select_records
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    w = Workspace.open(tmp_path / "ws.duckdb")
    rows = [log_record(f"ticket {i}", slice_=("billing", "login")[i % 2]) for i in range(10)]
    import_file(w, write_jsonl(tmp_path / "t.jsonl", rows))
    yield w
    w.close()


def last_id(ws: Workspace) -> int:
    """The last number record_seq handed out (reading it takes none)."""
    return int(ws.scalar("SELECT last_value FROM duckdb_sequences() WHERE sequence_name = 'record_seq'"))


@pytest.mark.parametrize(
    "clause",
    [
        "nextval('record_seq') > 0",
        "main.nextval('record_seq') > 0",
        "record_id IN (SELECT nextval('record_seq'))",
        "setseed(0.5) IS NULL",
        "currval('record_seq') > 0",
        "getvariable('x') IS NULL",
        "current_setting('home_directory') <> ''",
        "length(json_serialize_plan('SELECT 1')) > 0",
    ],
)
def test_functions_with_effects_or_outside_reads_are_refused(ws: Workspace, clause: str) -> None:
    before = last_id(ws)
    with pytest.raises(UserError, match=r"function \w+\(\) is not allowed"):
        count_records(ws, RecordFilter(where=clause))
    with pytest.raises(UserError, match=r"function \w+\(\) is not allowed"):
        select_records(ws, "big", Selection(missing=False, where=clause))
    assert last_id(ws) == before == 10


@pytest.mark.parametrize(
    ("clause", "n"),
    [
        ("slice = 'login'", 5),
        ("prompt ILIKE '%ticket 1%' OR prompt LIKE 'ticket 2'", 2),
        ("json_extract_string(metadata, '$.product_area') = 'billing'", 5),
        ("regexp_matches(prompt, 'ticket [0-4]$') AND length(prompt) < 20", 5),
        ("CASE WHEN record_id % 2 = 0 THEN true ELSE false END", 5),
        ("list_contains(['billing'], slice) AND coalesce(reference, '') = ''", 5),
        ("record_id IN (SELECT record_id FROM records WHERE record_id <= 3)", 3),
        ("random() >= 0 AND now() - INTERVAL 1 DAY < now()", 10),
        ("slice = 'login' -- only the login tickets", 5),
        ("slice = 'login' /* ) */", 5),
        ("(slice = 'login') AND (record_id > 0)", 5),
    ],
)
def test_ordinary_conditions_pass_and_mean_the_same_everywhere(ws: Workspace, clause: str, n: int) -> None:
    assert count_records(ws, RecordFilter(where=clause)) == n
    assert len(select_records(ws, "big", Selection(missing=False, where=clause))) == n


@pytest.mark.parametrize(
    ("clause", "says"),
    [
        ("1=1) --", r"a '\)' at character 4 closes more"),
        ("1=1) OR (true", r"a '\)' at character 4 closes more"),
        ("slice = 'x') OR (1=1", r"closes more"),
        ("(slice = 'x'", r"1 '\(' never closed"),
        ("1=1 /*", r"unterminated /\* comment"),
    ],
)
def test_text_that_is_not_one_expression_is_refused(ws: Workspace, clause: str, says: str) -> None:
    """Placed between the caller's parentheses, ``1=1) OR (true`` would reach out and OR away its other conditions."""
    with pytest.raises(UserError, match=says):
        count_records(ws, RecordFilter(slices=("billing",), where=clause))
    with pytest.raises(UserError, match=says):
        select_records(ws, "big", Selection(where=clause))


def test_slice_expressions_are_guarded_too(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("hunter2")
    for expr, says in [
        (f"(SELECT content FROM read_text('{tmp_path / 'secret.txt'}'))", "table functions"),
        ("nextval('record_seq')", r"function nextval\(\) is not allowed"),
        ("slice) || (slice", "closes more"),
    ]:
        with pytest.raises(UserError, match=says):
            define_by_expr(ws, "leak", expr)
    assert ws.scalar("SELECT count(*) FROM slicings") == 0
    assert preview_expr(ws, "CASE WHEN record_id <= 3 THEN 'early' ELSE 'late' END -- by id") == [
        ("late", 7),
        ("early", 3),
    ]


def test_the_allow_list_holds_only_what_duckdb_calls_side_effect_free() -> None:
    """After a DuckDB upgrade: nothing on the list may have become a function with effects or outside reads."""
    from curation.sql_functions import ALLOWED, DENIED, HARMLESS_RANDOM, SYNTAX, candidates

    con = duckdb.connect()
    assert not ALLOWED & DENIED
    assert ALLOWED - SYNTAX <= candidates(con)
    effects = {
        r[0].lower()
        for r in con.execute("SELECT function_name FROM duckdb_functions() WHERE has_side_effects").fetchall()
    }
    assert ALLOWED & effects <= HARMLESS_RANDOM
    assert {"nextval", "setseed", "currval", "getenv", "read_text", "read_csv"}.isdisjoint(ALLOWED)
