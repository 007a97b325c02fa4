"""One chat-completions request with retries: exponential backoff with full jitter, ``Retry-After`` honoured.

The ``openai`` client's own retries are switched off so every attempt is counted and every wait is ours.
Retried: 429, 408, 409, 5xx, timeouts, dropped connections and malformed bodies. Not retried: other 4xx.
An attempt abandoned after a timeout may still be billed by the provider: the outcome counts them (``timeouts``),
and the caller may refuse the retry (``retry_timeout``: the budget has no room for another billed attempt).
Errors are redacted before they leave this module (the key must never reach the workspace or a log).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curation.teacher.config import TeacherConfig, api_key, redact
from curation.teacher.store import Answer

if TYPE_CHECKING:
    import openai

CHAT_PATH = "/chat/completions"
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
RETRY_AFTER_CAP_S = 120.0


@dataclass
class CallOutcome:
    """The end of one request: an answer, or a final (redacted) error."""

    answer: Answer | None
    attempts: int
    http_status: int | None = None
    error: str | None = None
    timeouts: int = 0  # attempts abandoned after the client's timeout (the provider may bill them)
    unreachable: bool = False  # the last attempt could not connect at all: no later request will either


def make_client(cfg: TeacherConfig, concurrency: int | None = None) -> openai.OpenAI:
    """An OpenAI client for this teacher (key from the environment, no client-side retries), made once per run.

    Its connection pool keeps a connection alive per request in flight: the default keeps only 100, so a
    higher concurrency would open and close connections all the time.
    """
    import httpx2  # the openai client's HTTP library
    import openai  # here, not at the top: ~0.5-1.5 s that every CLI command and the studio paid at start

    n = max(concurrency or cfg.concurrency, 1)
    return openai.OpenAI(
        base_url=cfg.base_url,
        api_key=api_key(cfg),
        max_retries=0,
        timeout=cfg.timeout_s,
        http_client=openai.DefaultHttpxClient(
            limits=httpx2.Limits(max_connections=max(n, 100), max_keepalive_connections=n),
            timeout=cfg.timeout_s,
        ),
    )


def request_params(cfg: TeacherConfig, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sampling parameters sent (and hashed into the cache key): ``params`` or the teacher's own, always with
    an output cap (the budget reserves that many output tokens, so an uncapped request could exceed it)."""
    p = dict(cfg.params if params is None else params)
    if "max_tokens" not in p and "max_completion_tokens" not in p:
        p["max_tokens"] = cfg.max_output_tokens
    return p


def retry_after_s(headers: Any) -> float | None:
    """Seconds from ``Retry-After`` (or ``retry-after-ms``), capped; None if absent or unparseable."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return min(RETRY_AFTER_CAP_S, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra:
        try:
            return min(RETRY_AFTER_CAP_S, max(0.0, float(ra)))
        except ValueError:
            return None  # an HTTP date: fall back to our own backoff
    return None


def backoff_s(attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


def parse_completion(cfg: TeacherConfig, completion: Any, latency_ms: float, *, batch: bool = False) -> Answer:
    """An ``Answer`` from a ChatCompletion object or dict; ValueError if the body lacks what we need."""
    c = completion if isinstance(completion, dict) else completion.model_dump()
    choices = c.get("choices") or []
    if not choices or not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
        raise ValueError("response has no choices[0].message")
    choice = choices[0]
    text = choice["message"].get("content")
    if text is not None and not isinstance(text, str):
        raise ValueError("choices[0].message.content is not a string")
    lp = None
    content = (choice.get("logprobs") or {}).get("content")
    if isinstance(content, list):
        # Trimmed in place to {token, logprob, top_logprobs: [{token, logprob}]}: cheaper than rebuilding ~100
        # dicts per answer, which showed in the profile at high request rates.
        for t in content:
            if not isinstance(t, dict):
                raise ValueError("logprobs.content holds a non-object")
            t.pop("bytes", None)
            for a in t.get("top_logprobs") or ():
                a.pop("bytes", None)
        lp = content
    usage = c.get("usage") or {}
    pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return Answer(
        served_model=str(c.get("model") or cfg.model),
        response=text,
        logprobs=lp,
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=pt,
        completion_tokens=ct,
        cost_usd=cfg.cost(pt, ct, batch=batch),
        latency_ms=latency_ms,
    )


def call_chat(
    client: openai.OpenAI,
    cfg: TeacherConfig,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    *,
    cancel: threading.Event | None = None,
    rng: random.Random | None = None,
    retry_timeout: Callable[[], bool] | None = None,
) -> CallOutcome:
    """Send one request, retrying transient failures up to ``cfg.max_retries`` times. After a timeout the retry
    is sent only if ``retry_timeout()`` (when given) says yes."""
    import httpx2  # (its raw response type); both are loaded already: make_client made ``client``
    import openai

    rng = rng or random.Random()
    status: int | None = None
    error = "not attempted"
    timeouts = 0
    refused = False
    for attempt in range(cfg.max_retries + 1):
        wait: float | None = None
        timed_out = refused = False
        started = time.monotonic()
        try:
            # The client's generic POST with a ready body, read back as plain JSON: the typed
            # ``chat.completions.create`` walks every message through its TypedDict transform and builds pydantic
            # models for every logprob, which cost more CPU than the rest of the request (see bench/teacher_bench.py).
            raw = client.post(
                CHAT_PATH, cast_to=httpx2.Response, body={"model": cfg.model, "messages": messages, **params}
            )
            body = json.loads(raw.content)
            answer = parse_completion(cfg, body, (time.monotonic() - started) * 1000)
            return CallOutcome(answer, attempt + 1, 200, timeouts=timeouts)
        except openai.APIStatusError as exc:
            status = exc.status_code
            body = exc.body.get("message") if isinstance(exc.body, dict) else None
            error = f"HTTP {status}: {body or exc.message}"
            if status not in RETRY_STATUS:
                return CallOutcome(None, attempt + 1, status, redact(error, cfg), timeouts)
            wait = retry_after_s(exc.response.headers)
        except openai.APITimeoutError as exc:  # before APIConnectionError: it is a subclass
            timeouts += 1
            timed_out, status, error = True, None, f"{type(exc).__name__}: {exc}"
        except openai.APIConnectionError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
            # Nothing listens there (refused, unknown host): every other request would fail the same way.
            refused = isinstance(exc.__cause__, httpx2.ConnectError)
            if refused:
                error = f"cannot connect to {cfg.base_url}: is the teacher's server running? ({exc.__cause__})"
        except (openai.APIResponseValidationError, ValueError, KeyError, TypeError) as exc:
            status, error = 200, f"malformed response: {type(exc).__name__}: {exc}"
        if attempt == cfg.max_retries:
            break
        if timed_out and retry_timeout is not None and not retry_timeout():
            return CallOutcome(None, attempt + 1, status, redact("not retried (budget): " + error, cfg), timeouts)
        delay = wait if wait is not None else backoff_s(attempt, rng)
        if cancel is not None and cancel.wait(delay):
            return CallOutcome(None, attempt + 1, status, redact("cancelled while retrying: " + error, cfg), timeouts)
        if cancel is None:
            time.sleep(delay)
    return CallOutcome(None, cfg.max_retries + 1, status, redact(error, cfg), timeouts, unreachable=refused)
