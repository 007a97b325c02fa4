"""Fixtures for train tests (helpers live in trainfix.py so test modules can import them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from trainfix import KEY, KEY_ENV, build_tiny_model, triage_rows, write_parquet

from tests.teacher.fake_openai import FakeOpenAI


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def triage_file(tmp_path: Path) -> Path:
    return write_parquet(triage_rows(48, 16), tmp_path / "train.parquet")


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server on 127.0.0.1 with its key in ``KEY_ENV`` (teachers of ``fake_teacher_workspace``)."""
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = FakeOpenAI(api_key=KEY)
    srv.start()
    yield srv
    srv.stop()
