"""One request end to end: route it, ask the student and/or the teacher, fall back, log the line durably, answer.

Routes: ``both`` (shadow: the teacher answers; the student runs on the same request at the same time and is
logged, waited for at most ``shadow_wait_ms`` after the teacher), ``student`` (student mode, or the canary's share:
its answer is checked and goes to the teacher when ``Router.fallback_reason`` says so or it failed), ``teacher``
(the rest of a canary). A teacher that fails is replaced by the student's answer (reason ``teacher_error``); when
neither answers the caller gets a 502, logged too. The caller is answered only once its log line is on disk.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from curation.teacher.client import request_params
from curation.teacher.config import ALLOWED_PARAMS, redact
from curation.teacher.requests import TeacherSession
from curation.teacher.store import Answer
from train.serve import openai_format as fmt
from train.serve.chat_request import ChatRequest
from train.serve.logwriter import ServeLog
from train.serve.metrics import ServeMetrics
from train.serve.routing import Live, Router, key_hash
from train.serve.settings import SHADOW_LATE, STUDENT_ONLY_SUFFIX, ServeConfig
from train.serve.student import Student, StudentAnswer


@dataclass
class Outcome:
    """What the caller gets: HTTP status and body (a chat.completion or an error), streamed or not."""

    status: int
    doc: dict[str, Any]
    request: ChatRequest | None = None


@dataclass
class _Asked:
    """One model's part in a request: its answer or its error, and how long it took."""

    answer: StudentAnswer | Answer | None = None
    error: str | None = None
    latency_ms: float = 0.0
    cached: bool = False  # the teacher's answer came from the cache (nothing paid)


class Gateway:
    """The request path of ``distill serve``."""

    def __init__(
        self, cfg: ServeConfig, router: Router, student: Student, teacher: TeacherSession | None, log: ServeLog,
        metrics: ServeMetrics, teacher_pool: Executor | None,
    ) -> None:  # fmt: skip
        self.cfg, self.router, self.student, self.teacher = cfg, router, student, teacher
        self.log, self.metrics, self.teacher_pool = log, metrics, teacher_pool
        self._teacher_down_since: float | None = None  # when the session stopped sending (unreachable, refused)

    async def handle(self, body: Any, headers: Mapping[str, str]) -> Outcome:
        """Answer one chat-completions body (a 400 for a body that is not one; those are not logged)."""
        t0 = time.perf_counter()
        started = datetime.now(UTC)
        req = ChatRequest.parse(body, self.cfg.max_tokens)
        if isinstance(req, str):
            self.metrics.errors.labels("bad_request").inc()
            return Outcome(400, fmt.error_body(req))
        live = self.router.live
        key, from_header = self.router.key_of(headers, req.body)
        hashed = key_hash(key)
        slice_name = self.router.slice_of(headers, req.body)
        direct = req.body.get("model") == self.cfg.served_model + STUDENT_ONLY_SUFFIX
        planned = "student" if direct or self.teacher is None else self.router.route(live, hashed)
        s, t, route, reason, check = await self._answer(req, planned, slice_name, live, direct)
        rid = "chatcmpl-" + uuid.uuid4().hex[:24]
        doc, status = self._response(rid, int(started.timestamp()), req, route, s, t)
        conf = s.answer.confidence(live.thresholds.temperature) if isinstance(s.answer, StudentAnswer) else None
        ms = (time.perf_counter() - t0) * 1000
        meta = {"route": route, "mode": "direct" if direct else live.mode, "slice": slice_name,
                "fallback_reason": reason, "confidence": conf, "student": self._student_part(s, conf, check),
                "teacher": self._teacher_part(t), "request_id": rid, "key_hash": hashed,
                "key_from": "header" if from_header else "request"}  # fmt: skip
        record = {"request": req.body, "response": doc, "metadata": {"serve": meta, "slice": slice_name},
                  "started_at": started.isoformat().replace("+00:00", "Z"), "latency_ms": round(ms, 3)}  # fmt: skip
        try:  # every string scrubbed: a key pasted into a prompt comes back in answers and their logprobs too
            await asyncio.wrap_future(self.log.append(self._scrub(record)))
        except OSError as exc:
            self.metrics.errors.labels("log").inc()
            return Outcome(503, fmt.error_body(f"the request could not be logged: {exc}", "server_error"))
        self.metrics.observe_request(route, meta["mode"], slice_name, ms / 1000)
        if reason:
            self.metrics.fallbacks.labels(reason).inc()
        if conf is not None:
            self.metrics.confidence.observe(conf)
        if status != 200:
            self.metrics.errors.labels("no_answer").inc()
        return Outcome(status, doc, req)

    async def _answer(
        self, req: ChatRequest, planned: str, slice_name: str, live: Live, direct: bool
    ) -> tuple[_Asked, _Asked, str, str | None, str | None]:
        """Run the plan: (student part, teacher part, route served, fallback reason, the student's failed check)."""
        s, t = _Asked(), _Asked()
        if planned == "both":
            task = asyncio.create_task(self._ask_student(req))
            t = await self._ask_teacher(req)
            if t.answer is not None:
                try:
                    s = await asyncio.wait_for(asyncio.shield(task), self.cfg.shadow_wait_ms / 1000)
                except TimeoutError:
                    task.cancel()
                    s = _Asked(error=f"{SHADOW_LATE} {self.cfg.shadow_wait_ms:.0f} ms after the teacher answered")
                return s, t, "both", None, self._check(s, slice_name, live)
            s = await task
            check = self._check(s, slice_name, live)
            return s, t, ("student" if s.answer is not None else "teacher"), "teacher_error", check
        if planned == "teacher":
            t = await self._ask_teacher(req)
            if t.answer is not None:
                return s, t, "teacher", None, None
            s = await self._ask_student(req)
            check = self._check(s, slice_name, live)
            return s, t, ("student" if s.answer is not None else "teacher"), "teacher_error", check
        s = await self._ask_student(req)
        check = self._check(s, slice_name, live)
        reason = "student_error" if s.answer is None else check
        if reason is None or direct or self.teacher is None:
            return s, t, "student", None, check
        t = await self._ask_teacher(req)
        if t.answer is not None:
            return s, t, "teacher", reason, check
        return s, t, ("student" if s.answer is not None else "teacher"), "teacher_error", check

    def _check(self, s: _Asked, slice_name: str, live: Live) -> str | None:
        return self.router.fallback_reason(s.answer, slice_name, live) if isinstance(s.answer, StudentAnswer) else None

    async def _ask_student(self, req: ChatRequest) -> _Asked:
        t0 = time.perf_counter()
        try:
            ans = await self.student.answer(req.messages, req.sampling)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of the student is a fallback, never a crash of the gateway
            msg = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            return _Asked(error=self._redact(msg)[:500], latency_ms=(time.perf_counter() - t0) * 1000)
        return _Asked(ans, latency_ms=ans.latency_ms)

    def _teacher_circuit(self) -> None:
        """A session stops sending after an unreachable server or a refused key; fail fast for ``teacher_retry_s``
        (the student answers meanwhile), then let it try again."""
        assert self.teacher is not None
        if self.teacher.stop != "failed":
            self._teacher_down_since = None
            return
        now = time.monotonic()
        if self._teacher_down_since is None:
            self._teacher_down_since = now
        elif now - self._teacher_down_since >= self.cfg.teacher_retry_s:
            self._teacher_down_since = None
            self.teacher.resume()

    async def _ask_teacher(self, req: ChatRequest) -> _Asked:
        assert self.teacher is not None
        self._teacher_circuit()
        cfg = self.teacher.cfg
        caller = {k: v for k, v in req.body.items() if k in ALLOWED_PARAMS}
        merged = {**cfg.params, **caller}
        if not merged.get("logprobs"):
            merged.pop("top_logprobs", None)  # providers refuse top_logprobs without logprobs
        params = request_params(cfg, merged)
        t0 = time.perf_counter()
        # A cached answer is served only where it is what the teacher would say again: greedy requests.
        fresh = float(params.get("temperature") or 0.0) > 0
        loop = asyncio.get_running_loop()
        res = await loop.run_in_executor(self.teacher_pool, lambda: self.teacher.ask("serve", req.messages, params,  # type: ignore[union-attr]
                                                                                      cache=not fresh))  # fmt: skip
        ms = (time.perf_counter() - t0) * 1000
        if res.answer is None or res.answer.response is None:
            return _Asked(error=res.error or "the teacher gave no answer", latency_ms=ms)
        return _Asked(res.answer, latency_ms=ms, cached=res.source == "cache")

    def _response(
        self, rid: str, created: int, req: ChatRequest, route: str, s: _Asked, t: _Asked
    ) -> tuple[dict[str, Any], int]:
        """The chat.completion of the answer served (the teacher's unless the route is ``student``)."""
        served = s.answer if route == "student" else t.answer
        if served is None:
            why = "; ".join(f"{who}: {a.error}" for who, a in (("student", s), ("teacher", t)) if a.error)
            return fmt.error_body(f"no model could answer ({why})", "server_error", "upstream_failed"), 502
        lp = fmt.trim_logprobs(served.logprobs, req.top_logprobs) if req.logprobs else None
        if isinstance(served, StudentAnswer):
            text, model, finish = served.text, served.model, served.finish_reason
        else:
            text, model, finish = served.response or "", served.served_model, served.finish_reason or "stop"
        return fmt.completion(rid, created, model, text, finish, lp, served.prompt_tokens,
                              served.completion_tokens), 200  # fmt: skip

    @staticmethod
    def _student_part(s: _Asked, conf: float | None, check: str | None) -> dict[str, Any] | None:
        if s.answer is None and s.error is None:
            return None
        if not isinstance(s.answer, StudentAnswer):
            return {"text": None, "confidence": None, "latency_ms": round(s.latency_ms, 3), "model": None,
                    "fallback_check": None, "error": s.error}  # fmt: skip
        return {"text": s.answer.text, "confidence": conf, "latency_ms": round(s.latency_ms, 3),
                "model": s.answer.model, "fallback_check": check, "error": None}  # fmt: skip

    @staticmethod
    def _teacher_part(t: _Asked) -> dict[str, Any] | None:
        if t.answer is None and t.error is None:
            return None
        if not isinstance(t.answer, Answer):
            return {"text": None, "latency_ms": round(t.latency_ms, 3), "model": None, "cost_usd": 0.0,
                    "cached": False, "error": t.error}  # fmt: skip
        return {"text": t.answer.response, "latency_ms": round(t.latency_ms, 3), "model": t.answer.served_model,
                "cost_usd": 0.0 if t.cached else t.answer.cost_usd, "cached": t.cached, "error": None}  # fmt: skip

    def _redact(self, text: str) -> str:
        return redact(text, self.teacher.cfg if self.teacher is not None else None) or ""

    def _scrub(self, value: Any) -> Any:
        """``value`` as logged: every string with keys (the teacher's, anything key-shaped) replaced."""
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value
