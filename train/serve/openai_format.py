"""OpenAI's chat-completions shapes: the completion object, its stream chunks and error bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip


def completion(
    rid: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str,
    logprobs: list[dict[str, Any]] | None,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """A ``chat.completion`` with one choice; ``logprobs`` (OpenAI's ``content`` list) only when asked for."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                              "logprobs": None if logprobs is None else {"content": logprobs},
                              "finish_reason": finish_reason}  # fmt: skip
    return {"id": rid, "object": "chat.completion", "created": created, "model": model, "choices": [choice],
            "usage": usage(prompt_tokens, completion_tokens)}  # fmt: skip


def trim_logprobs(content: list[dict[str, Any]] | None, top: int) -> list[dict[str, Any]]:
    """Token logprobs with at most ``top`` alternatives each (a teacher may have sent more than the caller asked)."""
    return [{**t, "top_logprobs": (t.get("top_logprobs") or [])[:top]} for t in content or []]


def _pieces(text: str, content: list[dict[str, Any]] | None) -> list[tuple[str, list[dict[str, Any]] | None]]:
    """The text cut at its tokens when the tokens spell it exactly (each piece with its token's logprobs), else one
    piece carrying all of them."""
    if content and "".join(t["token"] for t in content) == text:
        return [(t["token"], [t]) for t in content]
    return [(text, content)] if text or content else []


def chunks(doc: dict[str, Any], *, with_logprobs: bool, include_usage: bool) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects that stream ``doc``: the role, the content token by token, the finish
    reason, and (``stream_options.include_usage``) a last chunk with no choices and the usage."""
    base = {"id": doc["id"], "object": "chat.completion.chunk", "created": doc["created"], "model": doc["model"]}
    choice = doc["choices"][0]
    content = (choice.get("logprobs") or {}).get("content")

    def chunk(delta: dict[str, Any], lp: list[dict[str, Any]] | None = None, finish: str | None = None) -> dict:
        c = {"index": 0, "delta": delta, "logprobs": {"content": lp} if with_logprobs and lp else None,
             "finish_reason": finish}  # fmt: skip
        return {**base, "choices": [c], **({"usage": None} if include_usage else {})}

    yield chunk({"role": "assistant", "content": ""})
    for piece, lp in _pieces(choice["message"]["content"] or "", content):
        yield chunk({"content": piece}, lp)
    yield chunk({}, None, choice["finish_reason"])
    if include_usage:
        yield {**base, "choices": [], "usage": doc["usage"]}


def sse(chunks_: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """Server-sent events: one ``data:`` line per chunk, then ``data: [DONE]``."""
    for c in chunks_:
        yield b"data: " + json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
