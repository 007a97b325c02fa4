"""Free-text search: ``RecordFilter.text`` is a case-insensitive substring of a record's prompt or effective
response, answered from ``record_search`` (one lower-cased, uncompressed copy of each record's text).

ILIKE over the records lower-cases every prompt and response and decompresses the prompts (ZSTD) on every search,
and the studio searches twice per filter (count and page): ~250 ms of CPU per scan on the 1M-record bench workspace
(0.6-1.2 s per filter on 2 busy cores). A ``contains()`` scan of the index column costs 30-100 ms, and the search is a
semi-join on record ids, so the rest of the query never reads text (measured in docs/architecture.md).

The index never gives a stale answer, and costs an import nothing:
- records newer than the index (ids above its highest; ids only grow) are added by the next search (``refresh``); a
  search that cannot write (a read-only folder) reads them directly;
- a writer that changes a record's response calls ``reindex`` inside its transaction (teacher answers, attached
  answers, undo of those);
- a reviewer's edited response is searched directly (edits are few), as is the prompt of an edited record;
- rows of deleted records match no record; ``refresh`` prunes them once they are many.
"""

from __future__ import annotations

from typing import Any

import duckdb

from curation.errors import UserError
from curation.workspace import Workspace

SEPARATOR = chr(31)  # between prompt and response in the index: a search for text holding it reads records directly
TEXT_SQL = "lower(r.prompt) || chr(31) || lower(coalesce(r.response, ''))"
_EDITED = "SELECT record_id FROM reviews WHERE edited_response IS NOT NULL"
_INDEXED_UP_TO = "(SELECT coalesce(max(record_id), -1) FROM record_search)"
PRUNE_SLACK = 10_000  # index rows of deleted records tolerated before refresh deletes them


def condition(text: str) -> tuple[str, list[Any]]:
    """A WHERE condition over the effective records (their ``record_id``) for ``text``, and its parameters."""
    needle = text.lower()
    if SEPARATOR in needle:
        return "(contains(lower(prompt), ?) OR contains(lower(response), ?))", [needle, needle]
    sql = f"""record_id IN (
        SELECT s.record_id FROM record_search s WHERE contains(s.text, ?) AND s.record_id NOT IN ({_EDITED})
        UNION ALL
        SELECT r.record_id FROM records r JOIN reviews v ON v.record_id = r.record_id
        WHERE v.edited_response IS NOT NULL AND (contains(lower(r.prompt), ?) OR contains(lower(v.edited_response), ?))
        UNION ALL
        SELECT r.record_id FROM records r WHERE r.record_id > {_INDEXED_UP_TO} AND r.record_id NOT IN ({_EDITED})
            AND (contains(lower(r.prompt), ?) OR contains(lower(r.response), ?)))"""
    return sql, [needle] * 5


def refresh(ws: Workspace) -> None:
    """Add the records newer than the index (and prune rows of deleted records when they are many).

    The first search of a workspace indexes every record (~1 s per million short records, under the write lock).
    Best effort: where the workspace cannot be written, ``condition`` reads the newer records directly.
    """
    newest, indexed, n_records, n_index = ws.query(
        f"SELECT (SELECT max(record_id) FROM records), {_INDEXED_UP_TO}, (SELECT count(*) FROM records), "
        "(SELECT count(*) FROM record_search)"
    )[0]
    if (newest is None or newest <= indexed) and n_index <= n_records + PRUNE_SLACK:
        return
    try:
        with ws.transaction() as cur:
            cur.execute(
                f"INSERT INTO record_search SELECT r.record_id, {TEXT_SQL} FROM records r "
                f"WHERE r.record_id > {_INDEXED_UP_TO}"  # again inside the lock: a concurrent search may have done it
            )
            if n_index > n_records + PRUNE_SLACK:
                cur.execute("DELETE FROM record_search WHERE record_id NOT IN (SELECT record_id FROM records)")
    except (duckdb.Error, UserError):
        pass  # read-only, or the service went away: the search itself reads what the index lacks, or says why


def reindex(cur: duckdb.DuckDBPyConnection, record_ids_sql: str, params: list[Any] | None = None) -> None:
    """Update the index rows of records whose response a writer just changed (in the writer's transaction)."""
    cur.execute(
        f"UPDATE record_search SET text = {TEXT_SQL} FROM records r "
        f"WHERE record_search.record_id = r.record_id AND r.record_id IN ({record_ids_sql})",
        params or [],
    )
