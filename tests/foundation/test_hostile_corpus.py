"""Every hostile input of ``hostile_corpus`` through `python -m distill import`, as a user runs it.

Per case: the exit code, the message, no traceback, the counts of the batch it made, and every earlier record as it
was (only answers a case attaches may change earlier records, and only those).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.foundation.hostile_corpus import Case, cases

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(ws: Path) -> dict[int, tuple]:
    if not ws.exists():
        return {}
    con = duckdb.connect(str(ws), read_only=True)
    try:
        rows = con.execute("SELECT record_id, batch_id, source_line, content_hash, response FROM records").fetchall()
    finally:
        con.close()
    return {r[0]: r for r in rows}


def _batches(ws: Path) -> list[tuple]:
    con = duckdb.connect(str(ws), read_only=True)
    try:
        return con.execute(
            "SELECT batch_id, n_imported, n_quarantined, "
            "(SELECT count(*) FROM attached_answers a WHERE a.batch_id = b.batch_id) FROM import_batches b "
            "ORDER BY batch_id"
        ).fetchall()
    finally:
        con.close()


def _run(case: Case, folder: Path, shared: Path) -> list[str]:
    """Run one case; the ways it differs from what it expects (empty when it does all of it)."""
    folder.mkdir()
    args = case.write(folder)
    ws = case.workspace(folder, shared) if case.workspace else shared
    before = _snapshot(shared)
    batches_before = _batches(shared) if shared.exists() else []
    env = {**os.environ, "PYTHONPATH": str(ROOT), **case.env}
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "import", *args, "-w", str(ws)],
        capture_output=True, text=True, env=env, cwd=folder, timeout=300,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    want = case.expect
    problems = []
    if proc.returncode != want.exit_code:
        problems.append(f"exit {proc.returncode}, expected {want.exit_code}")
    if "Traceback" in out:
        problems.append("a traceback reached the user")
    if want.message not in out:
        problems.append(f"no {want.message!r} in the output")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    if len(errors) > 1:
        problems.append(f"{len(errors)} error lines, expected at most one")
    new = [b for b in _batches(shared) if b not in batches_before] if shared.exists() else []
    if want.imported is None:
        if new:
            problems.append(f"a batch was made: {new}")
    elif len(new) != 1:
        problems.append(f"{len(new)} new batches, expected 1")
    else:
        got = tuple(new[0][1:])
        if got != (want.imported, want.quarantined, want.attached):
            problems.append(f"(imported, quarantined, attached) = {got}, expected "
                            f"{(want.imported, want.quarantined, want.attached)}")  # fmt: skip
    after = _snapshot(shared)
    gone = sorted(set(before) - set(after))
    changed = [i for i in before if i in after and after[i] != before[i]]
    answer_only = all(after[i][:4] == before[i][:4] for i in changed)  # id, batch, line and hash stay
    if gone:
        problems.append(f"earlier records removed: {gone[:5]}")
    if len(changed) != want.changes_earlier or not answer_only:
        problems.append(f"{len(changed)} earlier records changed, expected {want.changes_earlier} answers only")
    return [f"{case.name}: {p}" + (f"\n    output: {out.strip()[-400:]}" if i == 0 else "")
            for i, p in enumerate(problems)]  # fmt: skip


def test_every_hostile_input_through_the_cli(tmp_path: Path) -> None:
    shared = tmp_path / "shared.duckdb"
    problems: list[str] = []
    for n, case in enumerate(cases()):
        problems += _run(case, tmp_path / f"case{n:02d}", shared)
    assert not problems, "\n".join(problems)
