"""The student behind the gateway: in-process (transformers + peft, micro-batched) or a remote OpenAI-compatible
server that holds the adapter (vLLM ``--enable-lora --lora-modules NAME=PATH``), reached with the openai client."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from train.generate import Generation, confidence, generate
from train.serve.batching import MicroBatcher, StudentJob

MAX_TOP_LOGPROBS = 20  # OpenAI's limit


@dataclass
class Sampling:
    """A request's sampling options, as the gateway passes them to the student."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    top_logprobs: int = 0
    logprobs: bool = False  # the caller wants the tokens back (the confidence needs only their logprobs)


@dataclass
class StudentAnswer:
    """The student's answer: text, each token's logprob, OpenAI-shaped tokens (``logprobs.content``, when the
    caller asked for them), usage and timing."""

    text: str
    model: str
    latency_ms: float
    finish_reason: str = "stop"
    token_logprobs: list[float] = field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def confidence(self, temperature: float = 1.0) -> float | None:
        """``train.generate.confidence`` of the answer's token logprobs (None when it has no tokens)."""
        return confidence(self.token_logprobs, temperature)


class Student(Protocol):
    name: str

    async def answer(self, messages: list[dict[str, Any]], sampling: Sampling) -> StudentAnswer: ...

    def close(self) -> None: ...


class LocalStudent:
    """A loaded model (``train.generate.load_for_inference``) behind a ``MicroBatcher``."""

    def __init__(
        self, model: Any, tokenizer: Any, device: str, name: str, *, max_batch: int, wait_ms: float,
        timeout_s: float, on_batch: Any = None, logits_processor: Any = None,
    ) -> None:  # fmt: skip
        self.model, self.tokenizer, self.device, self.name = model, tokenizer, device, name
        self.timeout_s = timeout_s
        self.logits_processor = logits_processor  # train.generate's per-batch factory (answers inside a label set)
        self.batcher = MicroBatcher(self._run, max_batch, wait_ms, on_batch)

    def _run(self, jobs: list[StudentJob]) -> list[Generation]:
        head = jobs[0]
        return generate(
            self.model, self.tokenizer, [j.prompt for j in jobs], batch_size=len(jobs),
            max_new_tokens=[j.max_tokens for j in jobs], temperature=head.temperature, top_p=head.top_p,
            top_logprobs=max(j.top_logprobs for j in jobs), device=self.device, logits_processor=self.logits_processor,
        )  # fmt: skip

    async def answer(self, messages: list[dict[str, Any]], sampling: Sampling) -> StudentAnswer:
        from train.data import prompt_text

        top = min(sampling.top_logprobs, MAX_TOP_LOGPROBS)
        job = StudentJob(prompt_text(self.tokenizer, messages), sampling.max_tokens, sampling.temperature,
                         sampling.top_p, top)  # fmt: skip
        t0 = time.perf_counter()
        fut = self.batcher.submit(job)
        try:
            g = await asyncio.wait_for(asyncio.wrap_future(fut), self.timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            fut.cancel()  # not generated yet: the batcher skips it
            raise
        # the tokens as text only when asked: decoding them is most of the gateway's own CPU per request
        content = g.openai_logprobs(self.tokenizer, top) if sampling.logprobs else None
        return StudentAnswer(g.text, self.name, (time.perf_counter() - t0) * 1000, g.finish_reason, g.logprobs,
                             content, g.prompt_tokens, len(g.token_ids))  # fmt: skip

    def close(self) -> None:
        self.batcher.close()


class RemoteStudent:
    """An OpenAI-compatible server holding the student (model ``model`` there), asked for token logprobs."""

    def __init__(self, url: str, model: str, key_env: str | None, *, timeout_s: float) -> None:
        import openai

        self.name = model
        self.model = model
        from curation.teacher.config import NO_KEY

        key = os.environ.get(key_env) if key_env else None
        # vLLM without --api-key accepts any key; the client insists on one
        self.client = openai.AsyncOpenAI(base_url=url, api_key=key or NO_KEY, max_retries=0, timeout=timeout_s)

    async def answer(self, messages: list[dict[str, Any]], sampling: Sampling) -> StudentAnswer:
        opts: dict[str, Any] = {"max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
                                "logprobs": True, "top_logprobs": min(sampling.top_logprobs, MAX_TOP_LOGPROBS)}  # fmt: skip
        if sampling.top_p is not None:
            opts["top_p"] = sampling.top_p
        t0 = time.perf_counter()
        resp = await self.client.chat.completions.create(model=self.model, messages=messages, **opts)  # type: ignore[arg-type]
        ms = (time.perf_counter() - t0) * 1000
        doc = resp.model_dump()
        choice = doc["choices"][0]
        content = (choice.get("logprobs") or {}).get("content") or []
        usage = doc.get("usage") or {}
        return StudentAnswer(choice["message"].get("content") or "", str(doc.get("model") or self.model), ms,
                             choice.get("finish_reason") or "stop", [float(t["logprob"]) for t in content], content,
                             int(usage.get("prompt_tokens") or 0),
                             int(usage.get("completion_tokens") or len(content)))  # fmt: skip

    def close(self) -> None:
        pass  # the async client's connections close with the event loop
