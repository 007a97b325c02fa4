"""Who writes each workspace table: one owner module per table, plus the few other writers there are and why.

Every table is created by the one migration sequence in ``curation/migrations`` (which may also backfill any
table); after that only the owner INSERTs, UPDATEs or DELETEs its rows. Another module that needs a change calls the
owner's function (``train`` asks for new inputs through ``curation.oversample.request_inputs``; a filter queues
reviews through ``curation.review.queue_records``), and a layer never writes another layer's tables: ``train/`` owns
the training tables, ``curation/`` the rest. tests/test_table_owners.py scans the source for write statements and
fails on any write this map does not allow. docs/architecture.md shows the same table.
"""

from __future__ import annotations

# table -> owner: a module file, or a package folder ending in "/" (paths from the repository root).
OWNERS: dict[str, str] = {
    "schema_migrations": "curation/migrations/",
    "settings": "curation/workspace.py",
    "import_batches": "curation/records.py",
    "records": "curation/records.py",
    "quarantine": "curation/importing/",
    "attached_answers": "curation/importing/",
    "reviews": "curation/review.py",
    "review_events": "curation/review.py",
    "review_assignments": "curation/team.py",
    "review_comments": "curation/team.py",
    "input_requests": "curation/oversample.py",
    "embeddings": "curation/embeddings.py",
    "slicings": "curation/slices.py",
    "slicing_assignments": "curation/slices.py",
    "dedupe_runs": "curation/dedupe_runs.py",
    "dedupe_members": "curation/dedupe_runs.py",
    "splits": "curation/splits.py",
    "split_members": "curation/splits.py",
    "filter_runs": "curation/filters.py",
    "filter_results": "curation/filters.py",
    "dataset_versions": "curation/datasets.py",
    "dataset_members": "curation/datasets.py",
    "teachers": "curation/teacher/config.py",
    "teacher_cache": "curation/teacher/store.py",
    "teacher_ledger": "curation/teacher/store.py",
    "teacher_outputs": "curation/teacher/store.py",
    "teacher_runs": "curation/teacher/store.py",
    "teacher_batches": "curation/teacher/batch.py",
    "quality_bars": "train/bars.py",
    "runs": "train/store.py",
    "run_groups": "train/store.py",
    "run_metrics": "train/store.py",
    "evaluations": "train/store.py",
    "eval_slices": "train/store.py",
    "eval_items": "train/store.py",
    "record_search": "curation/search.py",
    "baseline_prompts": "train/baseline_prompts.py",
    "rounds": "train/rounds/store.py",
    "round_steps": "train/rounds/store.py",
}

# Tables derived from records that no work depends on (an index): an undo neither counts their rows as work attached
# to a batch nor deletes them (their owner prunes the rows of records that are gone).
DERIVED: set[str] = {"record_search"}

# (table, module) -> why that module writes a table it does not own. Each is a known exception inside curation,
# kept because the write must share the caller's transaction with rows only it has; none crosses a layer.
ALSO_WRITTEN_BY: dict[tuple[str, str], str] = {
    ("records", "curation/importing/"): "the fast import path inserts and numbers rows in bulk from read_json; an "
    "imported answer fills the waiting record it matches (attach.py) and undo empties it again",
    ("quarantine", "curation/workspace.py"): "opening a workspace discards an import a kill left half-done",
    ("records", "curation/workspace.py"): "opening a workspace discards an import a kill left half-done",
    ("import_batches", "curation/workspace.py"): "opening a workspace discards an import a kill left half-done",
    ("import_batches", "curation/importing/"): "undo marks the batch undone",
    ("teacher_outputs", "curation/importing/"): "an imported answer to a prompt another teacher answered attaches as "
    "this teacher's output in the import's transaction (attach.py); undo-import removes it again",
    ("records", "curation/teacher/store.py"): "a teacher answer fills the record's empty response with its output",
    ("records", "curation/teacher/batch.py"): "a Batch answer imported as a new record is folded into the asked one",
    ("import_batches", "curation/teacher/batch.py"): "the Batch import's counts after folding its answers",
}

# Modules that write a table whose name is computed, and what they write.
DYNAMIC_WRITERS: dict[str, str] = {
    "curation/importing/batches.py": "undo --force deletes the undone records' rows from every curation table that "
    "refers to records (DuckDB has no ON DELETE CASCADE), never another layer's (curation_tables())",
    "curation/importing/careful.py": "its own temporary tables",
    "curation/importing/batchjoin.py": "its own temporary tables",
    "curation/importing/tables.py": "its own temporary tables",
}


def may_write(module: str, table: str) -> bool:
    """Whether ``module`` (a path from the repository root) may write ``table``."""
    if table not in OWNERS:
        return False
    allowed = [OWNERS[table], *(m for (t, m) in ALSO_WRITTEN_BY if t == table)]
    return any(module == a or (a.endswith("/") and module.startswith(a)) for a in allowed)


def curation_tables() -> set[str]:
    """The tables curation owns that hold work on records (an undo's cascade stays inside these; train's evaluations
    keep their items), without the derived ones."""
    return {t for t, m in OWNERS.items() if m.startswith("curation/") and t not in DERIVED}
