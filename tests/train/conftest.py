"""Fixtures for train tests (helpers live in trainfix.py so test modules can import them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from roundfix import build_base
from trainfix import KEY, KEY_ENV, build_tiny_model, triage_rows, write_parquet

from tests.teacher.conftest import KEY as TEACHER_KEY
from tests.teacher.conftest import KEY_ENV as TEACHER_KEY_ENV
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


@pytest.fixture(scope="session")
def round_fake() -> Iterator[FakeOpenAI]:
    """The fake teacher for round tests (the teacher tests' key, as ``roundfix`` configures it), its key in the
    environment (children inherit it)."""
    old = os.environ.get(TEACHER_KEY_ENV)
    os.environ[TEACHER_KEY_ENV] = TEACHER_KEY
    srv = FakeOpenAI(api_key=TEACHER_KEY)
    srv.start()
    yield srv
    srv.stop()
    if old is None:
        os.environ.pop(TEACHER_KEY_ENV, None)
    else:
        os.environ[TEACHER_KEY_ENV] = old


@pytest.fixture(scope="session")
def round_base(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, round_fake: FakeOpenAI) -> dict[str, Any]:
    """A workspace built once where a round can start (``roundfix.build_base``); tests work on copies."""
    path = tmp_path_factory.mktemp("round-base") / "ws.duckdb"
    return {"path": path, **build_base(path, tiny_model, round_fake.base_url)}
