"""Fixtures for train tests (helpers live in trainfix.py so test modules can import them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainfix import build_tiny_model, triage_rows, write_parquet


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def triage_file(tmp_path: Path) -> Path:
    return write_parquet(triage_rows(48, 16), tmp_path / "train.parquet")
