"""Fixtures: small real workspaces built through the record API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from curation.records import finish_batch, insert_records, new_batch
from curation.workspace import Workspace

SLICES = ("billing", "login", "shipping")


def make_rows(n: int, start: int = 0) -> list[dict]:
    """``n`` support-ticket-like records over three slices, with token logprobs of varying confidence."""
    rows = []
    for i in range(start, start + n):
        intent = ["refund", "reset", "track"][i % 3]
        answer = {"intent": intent, "urgency": "low" if i % 2 else "high", "summary": f"t{i}"}
        text = json.dumps(answer)
        lp = -0.05 - (i % 10) * 0.2
        tokens = [
            {
                "token": tok,
                "logprob": lp if k != 1 else lp * 3,
                "top_logprobs": [{"token": tok, "logprob": lp}, {"token": "x", "logprob": -4.0}],
            }
            for k, tok in enumerate(text.split(" "))
        ]
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "Triage."},
                    {"role": "user", "content": f"ticket number {i}: help"},
                ],
                "response": text,
                "response_logprobs": tokens,
                "slice": SLICES[i % 3],
                "metadata": {"product_area": SLICES[i % 3], "n": i},
                "source_file": "fixture.jsonl",
                "source_line": i + 1,
                "teacher_model": "teacher-x",
            }
        )
    return rows


def build_workspace(path: Path, n: int = 60) -> Path:
    with Workspace.open(path) as ws:
        with ws.transaction() as cur:
            b = new_batch(cur, "fixture.jsonl", "log")
            ids = insert_records(cur, b, make_rows(n))
            finish_batch(cur, b, n_lines=n + 1, n_imported=len(ids), n_duplicates=0, n_quarantined=1)
            cur.execute(
                "INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw) VALUES (?, ?, ?, ?, ?, ?)",
                [b, "fixture.jsonl", n + 1, "messages", "missing messages", '{"oops": 1}'],
            )
    return path


@pytest.fixture
def ws_path(tmp_path: Path) -> Path:
    return build_workspace(tmp_path / "ws.duckdb")


@pytest.fixture
def ws(ws_path: Path) -> Iterator[Workspace]:
    w = Workspace.open(ws_path)
    yield w
    w.close()


async def settle(pilot, rounds: int = 3) -> None:  # type: ignore[no-untyped-def]
    """Let workers finish and their messages land (a few rounds: one worker's result can start another).

    DirectoryTree keeps a loader worker alive for its whole life; it is never waited on.
    """
    from textual.worker import WorkerFailed

    for _ in range(rounds):
        ours = [w for w in pilot.app.workers if type(w.node).__name__ != "DirectoryTree"]
        if ours:  # an empty list would mean "all workers" to wait_for_complete
            try:
                await pilot.app.workers.wait_for_complete(ours)
            except WorkerFailed:
                # A worker that ended in error: the studio shows it (tests assert on the notification); waiting on
                # it re-raises only when it is still listed, which depends on timing.
                pass
        await pilot.pause()


def status_text(app, selector: str) -> str:  # type: ignore[no-untyped-def]
    """The plain text of a Static on the active screen."""
    return str(app.screen.query_one(selector).render())


@dataclass(frozen=True)
class Note:
    """One notification the app showed."""

    message: str
    title: str
    severity: str


@pytest.fixture
def notes(monkeypatch: pytest.MonkeyPatch) -> list[Note]:
    """Every notification the studio shows, kept (a toast expires after its timeout, which a busy machine reaches)."""
    from studio.app import DistillStudio

    shown: list[Note] = []
    original = DistillStudio.notify

    def notify(self: DistillStudio, message: str, *, title: str = "", severity: str = "information", **kw: Any) -> None:
        shown.append(Note(message, title, severity))
        original(self, message, title=title, severity=severity, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(DistillStudio, "notify", notify)
    return shown
