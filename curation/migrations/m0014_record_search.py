"""v14: ``record_search``, the free-text search index (``curation.search``): each record's prompt and response in
lower case, one row per record, filled by the first search (and kept current by the writers of responses).

The text column is stored uncompressed: a search is one ``contains()`` scan of it, and decompressing it (the
default compression chose dictionary/ZSTD here) made that scan 1.5-3x slower on the 1M-record bench workspace.
"""

from __future__ import annotations

import duckdb

VERSION = 14  # (12, 13 are taken by features landing in parallel; a gap fills in on open)
DESCRIPTION = "record_search: lower-cased prompt and response per record for free-text search"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE record_search (
            record_id BIGINT NOT NULL,                          -- the record (rows of deleted records match nothing)
            text VARCHAR USING COMPRESSION uncompressed NOT NULL -- lower(prompt) || chr(31) || lower(response)
        );
        """
    )
