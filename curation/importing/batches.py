"""Import batches: listing and undo."""

from __future__ import annotations

from typing import Any

from curation.errors import UserError
from curation.importing.attach import attached_records_sql, detach_answers
from curation.table_owners import curation_tables
from curation.workspace import Workspace


def list_batches(ws: Workspace, include_undone: bool = True) -> list[dict[str, Any]]:
    """Every import batch, newest first, with its counts."""
    where = "" if include_undone else "WHERE status = 'done'"
    return ws.query_dicts(
        f"""SELECT batch_id, source_file, format, status, started_at, finished_at, n_lines, n_imported,
            (SELECT count(*) FROM attached_answers a WHERE a.batch_id = b.batch_id)
                + (SELECT count(*) FROM teacher_outputs o WHERE o.batch_id = b.batch_id) AS n_attached,
            n_duplicates, n_quarantined, CAST(warnings AS VARCHAR) AS warnings, CAST(options AS VARCHAR) AS options
        FROM import_batches b {where} ORDER BY batch_id DESC"""
    )


def _referencing_tables(ws: Workspace) -> list[str]:
    """Curation's tables that refer to records. Train's ``eval_items`` are left alone: an evaluation keeps its items
    (they hold their own prompt and answers), as the teacher ledger keeps its costs."""
    rows = ws.query(
        """SELECT DISTINCT table_name FROM information_schema.columns
        WHERE table_schema = 'main' AND column_name = 'record_id' AND table_name <> 'records'
          AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')"""
    )
    return sorted(r[0] for r in rows if r[0] in curation_tables())


def undo_import(ws: Workspace, batch_id: int, *, force: bool = False) -> int:
    """Remove a batch's records and quarantine entries, and empty the earlier records its answers filled (see
    ``attach``); return how many records were removed.

    Refuses when the records (or the records it filled) are part of a dataset version (immutable), and, unless
    ``force``, when other work (reviews, teacher outputs, splits, answers later imports attached to its records...)
    refers to them; with ``force`` that work is removed too. Teacher outputs are paid work: ``force`` removes the
    outputs on these records but keeps the cost ledger (money spent) and the teacher cache (no record ids), so
    re-importing and generating again is free.
    """
    row = ws.query("SELECT status FROM import_batches WHERE batch_id = ?", [batch_id])
    if not row:
        raise UserError(f"no import batch {batch_id} (see `distill batches`)")
    if row[0][0] == "undone":
        raise UserError(f"batch {batch_id} was already undone")
    # The batch's own records, and the earlier records its answers filled: work on either depends on this batch.
    touched = f"SELECT record_id FROM records WHERE batch_id = {int(batch_id)} UNION ALL " + attached_records_sql(
        batch_id
    )
    used: dict[str, int] = {}
    for table in _referencing_tables(ws):
        if table == "attached_answers":  # answers later imports put on this batch's records
            where = f"record_id IN (SELECT record_id FROM records WHERE batch_id = {int(batch_id)})"
        else:
            where = f"record_id IN ({touched})"
        n = ws.scalar(f'SELECT count(*) FROM "{table}" WHERE {where}')
        if n:
            used[table] = int(n)
    frozen = {t: n for t, n in used.items() if t.startswith("dataset")}
    if frozen:
        t, n = next(iter(frozen.items()))
        raise UserError(f"batch {batch_id} cannot be undone: {n} of its records are in dataset versions ({t})")
    if used and not force:
        names = {"teacher_outputs": "paid teacher outputs", "attached_answers": "answers attached by later imports"}
        if "teacher_outputs" in used:  # other teachers' answers that later imports put beside these records
            imported = ws.scalar(
                f"SELECT count(*) FROM teacher_outputs WHERE batch_id IS NOT NULL AND record_id IN ({touched})"
            )
            if imported:
                names["teacher_outputs"] = f"teacher outputs ({imported} of them other teachers' imported answers)"
        what = ", ".join(f"{n} {names[t]}" if t in names else f"{n} in {t}" for t, n in used.items())
        kept = " (the cost ledger and teacher cache stay: generating again after a re-import is free)"
        raise UserError(f"batch {batch_id} has work attached ({what}); pass --force to remove it as well"
                        + (kept if "teacher_outputs" in used else ""))  # fmt: skip
    with ws.transaction() as cur:
        for table in used:
            if table == "attached_answers":
                cur.execute(
                    "DELETE FROM attached_answers WHERE record_id IN (SELECT record_id FROM records WHERE batch_id = ?)",
                    [batch_id],
                )
            else:
                cur.execute(f'DELETE FROM "{table}" WHERE record_id IN ({touched})')
        detach_answers(cur, batch_id)
        removed = cur.execute("DELETE FROM records WHERE batch_id = ?", [batch_id]).fetchall()[0][0]
        cur.execute("DELETE FROM quarantine WHERE batch_id = ?", [batch_id])
        cur.execute("UPDATE import_batches SET status = 'undone' WHERE batch_id = ?", [batch_id])
    return int(removed)
