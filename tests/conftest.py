"""Shared fixtures: a real workspace in tmp_path and builders for log lines."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from curation.workspace import Workspace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tests open workspaces in-process (each test's file is its own; a service per test would add a process start to
# each). tests/service/ runs the service; `DISTILL_SERVICE=on pytest ...` runs any test through it.
os.environ.setdefault("DISTILL_SERVICE", "off")


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh workspace file in tmp_path."""
    w = Workspace.open(tmp_path / "ws.duckdb")
    yield w
    w.close()


def log_record(
    prompt: str,
    answer: str = '{"intent": "refund"}',
    *,
    slice_: str | None = "billing",
    logprobs: list[float] | None = None,
    system: str | None = "Triage the ticket.",
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A logging-proxy record (format a) as a dict."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {"token": f"t{i}", "logprob": lp, "top_logprobs": [{"token": f"t{i}", "logprob": lp}]}
                for i, lp in enumerate(logprobs)
            ]
        }
    meta: dict[str, Any] = {}
    if slice_ is not None:
        meta["product_area"] = slice_
    meta.update(extra_meta or {})
    return {
        "request": {"model": "gpt-4o", "messages": messages, "temperature": 0},
        "response": {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1767225600,
            "model": "gpt-4o-2024-08-06",
            "choices": [choice],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        },
        "metadata": meta,
        "started_at": "2026-01-01T10:00:00Z",
        "latency_ms": 420.5,
    }


def write_jsonl(path: Path, items: list[Any]) -> Path:
    """Write items as JSON lines (bytes items are written raw, as a whole line)."""
    with open(path, "wb") as f:
        for it in items:
            f.write(it if isinstance(it, bytes) else json.dumps(it).encode())
            f.write(b"\n")
    return path
