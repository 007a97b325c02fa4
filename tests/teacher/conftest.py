"""Fixtures: the fake OpenAI server on 127.0.0.1, a key in the environment, small workspaces without answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from curation.records import finish_batch, insert_records, new_batch
from curation.teacher.config import TeacherConfig, save_teacher
from curation.workspace import Workspace
from tests.teacher.fake_openai import FakeOpenAI

KEY = "sk-test-fake-0123456789abcdef"
KEY_ENV = "DISTILL_TEST_TEACHER_KEY"
SLICES = ("billing", "login", "shipping")
WORDS = {"billing": "refund my charge", "login": "password reset fails", "shipping": "package delivery late"}


def ticket_rows(n: int, *, start: int = 0, answered: int = 0) -> list[dict[str, Any]]:
    """``n`` ticket records over three slices; the first ``answered`` of them already have a response."""
    rows = []
    for i in range(start, start + n):
        s = SLICES[i % 3]
        row: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": "Triage the ticket. Answer JSON {intent, urgency, summary}."},
                {"role": "user", "content": f"ticket {i}: {WORDS[s]} please"},
            ],
            "slice": s,
            "metadata": {"product_area": s},
        }
        if i - start < answered:
            row["response"] = '{"intent": "other", "urgency": "low", "summary": "logged"}'
            row["teacher_model"] = "prod-teacher"
        rows.append(row)
    return rows


def build(path: Path, n: int = 12, answered: int = 0) -> Path:
    """A workspace file with ``n`` ticket records."""
    with Workspace.open(path) as ws:
        with ws.transaction() as cur:
            b = new_batch(cur, "fixture.jsonl", "log")
            ids = insert_records(cur, b, ticket_rows(n, answered=answered))
            finish_batch(cur, b, n_lines=n, n_imported=len(ids), n_duplicates=0, n_quarantined=0)
    return path


def teacher_cfg(base_url: str, name: str = "big", **kw: Any) -> TeacherConfig:
    """A teacher aimed at the fake server with fast retries."""
    values: dict[str, Any] = dict(
        name=name, base_url=base_url, model="triage-teacher-2026-01-01", api_key_env=KEY_ENV,
        price_in_per_m=2.5, price_out_per_m=10.0, terms_ack=True, concurrency=4, timeout_s=5.0, max_retries=5,
    )  # fmt: skip
    values.update(kw)
    return TeacherConfig(**values)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI(api_key=KEY)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture
def tws(tmp_path: Path, server: FakeOpenAI, key_env: str) -> Iterator[Workspace]:
    """A workspace with 12 unanswered tickets and teacher 'big' aimed at the fake server."""
    ws = Workspace.open(build(tmp_path / "ws.duckdb"))
    save_teacher(ws, teacher_cfg(server.base_url))
    yield ws
    ws.close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff waits of milliseconds in-process (the schedule itself is what is tested, not its scale)."""
    import curation.teacher.client as client

    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.005)


def output_counts(ws: Workspace, teacher: str = "big") -> dict[int, int]:
    """Outputs per record for a teacher, over every record."""
    rows = ws.query(
        "SELECT r.record_id, count(o.record_id) FROM records r LEFT JOIN teacher_outputs o "
        "ON o.record_id = r.record_id AND o.teacher = ? GROUP BY r.record_id",
        [teacher],
    )
    return {int(a): int(b) for a, b in rows}
