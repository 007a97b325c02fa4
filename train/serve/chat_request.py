"""A chat-completions request body, checked and read once: messages as text, sampling, logprobs, streaming."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from train.serve.student import MAX_TOP_LOGPROBS, Sampling


@dataclass
class ChatRequest:
    """What the gateway needs from a body. ``messages`` have plain-text contents (OpenAI's text parts joined)."""

    body: dict[str, Any]
    messages: list[dict[str, Any]]
    sampling: Sampling
    logprobs: bool = False
    top_logprobs: int = 0
    stream: bool = False
    include_usage: bool = False

    @staticmethod
    def parse(body: Any, default_max_tokens: int) -> ChatRequest | str:
        """The request, or a one-line reason it cannot be served (the caller gets it as a 400)."""
        if not isinstance(body, dict):
            return "the request body must be a JSON object"
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            return "messages must be a non-empty list of message objects"
        messages = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                return f"messages[{i}] must be an object with a role"
            text = _text(m.get("content"))
            if text is None:
                return f"messages[{i}].content must be a string or a list of text parts"
            messages.append({"role": m["role"], "content": text})
        if _num(body.get("n"), 1) != 1:
            return "n must be 1: the gateway answers with one choice"
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        temperature = _num(body.get("temperature"), 0.0)
        top_p = body.get("top_p")
        top = _num(body.get("top_logprobs"), 0)
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            return "max_tokens must be an integer >= 1"
        if math.isnan(temperature) or not 0.0 <= temperature <= 2.0:
            return "temperature must be a number between 0 and 2"
        if top_p is not None and (not isinstance(top_p, int | float) or not 0.0 < top_p <= 1.0):
            return "top_p must be a number in (0, 1]"
        if math.isnan(top) or top != int(top) or not 0 <= top <= MAX_TOP_LOGPROBS:
            return f"top_logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}"
        opts = body.get("stream_options")
        sampling = Sampling(cap or default_max_tokens, temperature, top_p, int(top), bool(body.get("logprobs")))
        return ChatRequest(body, messages, sampling, bool(body.get("logprobs")), int(top), bool(body.get("stream")),
                           isinstance(opts, dict) and bool(opts.get("include_usage")))  # fmt: skip


def _num(v: Any, default: float) -> float:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float):
        return math.nan
    return float(v)


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text") or "") for p in content)
    return None
