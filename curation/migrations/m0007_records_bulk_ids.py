"""v7: records without the primary-key index, so a large import is one parallel pass.

DuckDB keeps a PRIMARY KEY as an ART index that every insert must update and that forbids updating the key.
The fast importer writes a file's rows in one ordered INSERT and then numbers them from their row ids (see
``curation.importing.load``), which needs the key column to be updatable. Ids stay unique because every writer
takes them from ``record_seq`` (the importer as one block); ``NOT NULL`` is kept. Lookups by id still prune by
zone maps: ids grow with insertion order, so each row group covers a narrow id range.

DuckDB cannot drop a constraint in place, so the table is rebuilt with the same columns in id order.
"""

from __future__ import annotations

import duckdb

VERSION = 7
DESCRIPTION = "records without the primary-key index (bulk-numbered imports)"

RECORDS_DDL = """
CREATE TABLE records (
    record_id BIGINT NOT NULL DEFAULT nextval('record_seq'),
    batch_id INTEGER NOT NULL,
    source_file VARCHAR,
    source_line BIGINT,
    messages JSON NOT NULL,
    prompt VARCHAR,
    response VARCHAR,
    response_logprobs JSON,
    teacher_model VARCHAR,
    finish_reason VARCHAR,
    slice VARCHAR NOT NULL DEFAULT '(none)',
    reference VARCHAR,
    metadata JSON,
    request_params JSON,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms DOUBLE,
    logged_at TIMESTAMP,
    content_hash VARCHAR NOT NULL,
    origin VARCHAR NOT NULL DEFAULT 'import',
    imported_at TIMESTAMP NOT NULL DEFAULT now(),
    mean_logprob DOUBLE,
    min_logprob DOUBLE
)
"""


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("ALTER TABLE records RENAME TO records_v6")
    con.execute(RECORDS_DDL)
    con.execute("INSERT INTO records BY NAME SELECT * FROM records_v6 ORDER BY record_id")
    con.execute("DROP TABLE records_v6")
