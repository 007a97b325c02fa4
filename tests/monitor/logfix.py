"""Hand-written gateway log lines, in the exact shape ``distill serve`` writes (the import format ``log``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TEACHER_MODEL = "gpt-4o-2024-08-06"
STUDENT_MODEL = "distill-run-1"


def answer(intent: str, urgency: str = "low") -> str:
    return json.dumps({"intent": intent, "urgency": urgency})


def log_line(
    prompt: str,
    *,
    route: str = "both",
    mode: str = "shadow",
    slice_name: str | None = "billing",
    student: str | None = None,
    teacher: str | None = None,
    confidence: float | None = 0.9,
    fallback_reason: str | None = None,
    fallback_check: str | None = None,
    latency_ms: float = 100.0,
    student_ms: float = 40.0,
    teacher_ms: float = 90.0,
    at: datetime | None = None,
    teacher_model: str = TEACHER_MODEL,
    usage: tuple[int, int] = (100, 20),
    teacher_cost: float | None = None,
) -> dict[str, Any]:
    """One request as logged. ``student``/``teacher`` are the answers (None: that model was not asked)."""
    messages = [{"role": "system", "content": "Triage the ticket as JSON."}, {"role": "user", "content": prompt}]
    served = student if route == "student" else teacher
    served_model = STUDENT_MODEL if route == "student" else teacher_model
    started = at or T0
    s_part = None
    if student is not None:
        s_part = {"text": student, "confidence": confidence, "latency_ms": student_ms, "model": STUDENT_MODEL,
                  "fallback_check": fallback_check, "error": None}  # fmt: skip
    t_part = None
    if teacher is not None:
        t_part = {"text": teacher, "latency_ms": teacher_ms, "model": teacher_model, "cost_usd": teacher_cost,
                  "cached": False, "error": None}  # fmt: skip
    rid = f"chatcmpl-{abs(hash((prompt, started))) % 10**12:012d}"
    return {
        "request": {"model": "distill-student", "messages": messages, "metadata": {"slice": slice_name}},
        "response": {"id": rid, "object": "chat.completion", "created": int(started.timestamp()), "model": served_model,
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": served},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                               "total_tokens": sum(usage)}},
        "metadata": {"serve": {"route": route, "mode": mode, "slice": slice_name or "(none)",
                               "fallback_reason": fallback_reason, "confidence": confidence if student else None,
                               "student": s_part, "teacher": t_part, "request_id": rid, "key_hash": "0" * 16,
                               "key_from": "request"},
                     "slice": slice_name or "(none)"},
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "latency_ms": latency_ms,
    }  # fmt: skip


def write_log(folder: Path, lines: list[dict[str, Any]], name: str = "serve-000001.jsonl", mode: str = "w") -> Path:
    """Write (or append) lines as the gateway does: one JSON object per line, newline-terminated."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open(mode, encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    return path


def minutes(k: float) -> datetime:
    return T0 + timedelta(minutes=k)
