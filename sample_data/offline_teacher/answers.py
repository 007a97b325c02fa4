"""What the offline teacher answers: a chat request in, a ChatCompletion body out, the same for the same request.

It reads the request as a model would read its prompt. A grading request (a reference and a candidate answer) gets a
1-5 grade from comparing their intent and urgency; a request for new inputs (``exactly N new`` ... ``"prompts"``)
gets N new tickets in the style of the listed examples; a ticket (a triage system prompt, or a last user message that
is one of the sample's tickets) gets the triage JSON the sample's teacher gives, with its mistakes now and then; any
other request a short fixed answer. Randomness comes from a hash of the messages and the temperature, so the same
request gets the same answer, as from a cache.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from sample_data.generate import ErrorRates, mark_weak, teacher_answer, token_logprobs, tokens
from sample_data.offline_teacher.tickets import match, write_ticket

# Wrong intent 3%, wrong urgency 2% at temperature 0: the ~5% mistakes filters and judges should find. The sample's
# logged teacher also cuts 1.5% of its answers mid-JSON; this one does that only when max_tokens cuts it.
RATES = ErrorRates(wrong_intent=0.03, wrong_urgency=0.02, invalid_json=0.0)
MAX_NEW_PROMPTS = 100
GENERIC = "I am the offline sample teacher: I triage support tickets and write new ones; ask me about a ticket."
_N_NEW = re.compile(r"exactly (\d+) new|(\d+) new (?:user )?(?:inputs|messages|prompts)", re.I)
_JUDGE = re.compile(r"Reference answer:\s*\n(.*?)\n\s*\nCandidate answer:\s*\n(.*?)(?:\n\s*\nGrade\b|\Z)", re.S)
_INPUT = re.compile(r"Input:\s*\n(.*?)\n\s*\nReference answer:", re.S)
_LABEL = {k: re.compile(rf'"{k}"\s*:\s*"([A-Za-z_]+)"') for k in ("intent", "urgency")}


@dataclass
class Reply:
    """An answer's text and where its logprobs show doubt (token position -> the alternative it doubted with)."""

    text: str
    weak: set[int] = field(default_factory=set)
    alts: dict[int, str] = field(default_factory=dict)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: the text ones
        return " ".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return str(content or "")


def seed_of(messages: list[dict[str, Any]], temperature: float) -> int:
    """The request's seed: its messages and temperature, hashed."""
    doc = json.dumps([messages, temperature], sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(doc.encode()).digest()[:8], "big")


def triage(rng: random.Random, ticket: str, temperature: float) -> Reply:
    """The teacher's JSON triage of one ticket; a doubtful template match shows in the intent token's logprob."""
    m = match(ticket)
    scale = 1.0 + max(0.0, temperature) / 2  # hotter sampling, a few more mistakes
    rates = ErrorRates(RATES.wrong_intent * scale, RATES.wrong_urgency * scale, RATES.invalid_json)
    answer, error, weak, alts = teacher_answer(rng, ticket, m.template.intent, m.template.urgency, rates)
    if error is None and m.runner_up is not None and not m.sure:
        mark_weak(tokens(answer), m.template.intent, m.runner_up.intent, weak, alts)
    return Reply(answer, weak, alts)


def _folded(text: str) -> str:  # how a dedupe compares prompts: case and whitespace folded
    return " ".join(text.lower().split())


def new_prompts(rng: random.Random, n: int, examples: list[str]) -> Reply:
    """``{"prompts": [...]}``: ``n`` distinct new tickets for the intents of ``examples`` (taken in turn, so the new
    ones follow the examples' mix), none equal to an example."""
    likes = [match(e).template for e in examples] or [match("").template]
    seen = {_folded(e) for e in examples}
    out: list[str] = []
    for i in range(min(n, MAX_NEW_PROMPTS)):
        for _ in range(50):  # a repeat is drawn again; the fillers make one unlikely
            text = write_ticket(rng, likes[i % len(likes)])
            if _folded(text) not in seen:
                seen.add(_folded(text))
                out.append(text)
                break
    return Reply(json.dumps({"prompts": out}, ensure_ascii=False))


def _labels(text: str) -> dict[str, str]:
    return {k: m.group(1) for k, rx in _LABEL.items() if (m := rx.search(text))}


def grade(user: str) -> Reply | None:
    """A 1-5 grade of the candidate against the reference by intent and urgency (None if ``user`` holds no pair).
    5 both right, 3 intent right, 2 only urgency right, 1 neither; an answer that is not JSON gets at most 2."""
    m = _JUDGE.search(user)
    if m is None:
        return None
    ref, cand = _labels(m.group(1)), _labels(m.group(2))
    if set(ref) != {"intent", "urgency"}:  # the reference is unusable: judge against the ticket itself
        inp = _INPUT.search(user)
        t = match(inp.group(1).strip() if inp else "").template
        ref = {"intent": t.intent, "urgency": t.urgency}
    same_intent, same_urgency = cand.get("intent") == ref["intent"], cand.get("urgency") == ref["urgency"]
    score = {(True, True): 5, (True, False): 3, (False, True): 2}.get((same_intent, same_urgency), 1)
    try:  # a fenced JSON block passes as JSON: what a reader would take from it
        valid = isinstance(json.loads(re.sub(r"^```(?:json)?\s*|\s*```$", "", m.group(2).strip())), dict)
    except json.JSONDecodeError:
        valid = False
    if not valid:
        score = min(score, 2)
    problems = [
        f"{k} {cand.get(k, 'missing')} instead of {ref[k]}" for k in ("intent", "urgency") if cand.get(k) != ref[k]
    ]
    reason = "; ".join(problems + ([] if valid else ["not valid JSON"])) or "same intent and urgency"
    return Reply(json.dumps({"score": score, "reason": reason}))


def reply_to(messages: list[dict[str, Any]], rng: random.Random, temperature: float) -> Reply:
    """The answer to a conversation (see the module docstring for how it is read)."""
    system = " ".join(_text(m) for m in messages if m.get("role") in ("system", "developer"))
    users = [_text(m) for m in messages if m.get("role") == "user"]
    last = users[-1] if users else ""
    graded = grade(last)
    if graded is not None:
        return graded
    wanted = _N_NEW.search(system) or _N_NEW.search(last)
    if wanted and "prompts" in system + last:
        examples = [ln[2:].strip() for ln in last.splitlines() if ln.startswith("- ")]
        return new_prompts(rng, int(wanted.group(1) or wanted.group(2)), examples)
    if "triage" in system.lower() or (last and match(last).score == 1.0):
        return triage(rng, last, temperature)
    return Reply(GENERIC)


def _distinct_alternatives(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The generator's second alternative is the token in upper case, the same token when it has no letters; a
    provider never lists a token twice, so a repeat gets a trailing space."""
    for entry in content:
        seen: set[str] = set()
        for alt in entry["top_logprobs"]:
            while alt["token"] in seen:
                alt["token"] += " "
                alt["bytes"] = list(alt["token"].encode())
            seen.add(alt["token"])
    return content


def completion(body: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """The ChatCompletion body for a request body (``messages``, ``n``, ``temperature``, ``max_tokens`` or
    ``max_completion_tokens``, ``logprobs``, ``top_logprobs``)."""
    messages: list[dict[str, Any]] = body["messages"]
    temperature = float(body.get("temperature") if body.get("temperature") is not None else 1.0)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    top = max(0, min(20, int(body.get("top_logprobs") or 0)))
    seed = seed_of(messages, temperature)
    choices, n_out = [], 0
    for index in range(int(body.get("n") or 1)):
        rng = random.Random(seed + index)
        reply = reply_to(messages, rng, temperature)
        toks = tokens(reply.text)
        finish = "stop"
        if limit is not None and len(toks) > int(limit):
            toks, finish = toks[: int(limit)], "length"
        text = "".join(toks)
        n_out += len(toks)
        choice: dict[str, Any] = {"index": index, "message": {"role": "assistant", "content": text},
                                  "logprobs": None, "finish_reason": finish}  # fmt: skip
        if body.get("logprobs"):
            content = token_logprobs(rng, text, reply.weak, reply.alts, top)
            choice["logprobs"] = {"content": _distinct_alternatives(content), "refusal": None}
        choices.append(choice)
    n_in = 3 + sum(4 + len(tokens(_text(m))) for m in messages)  # ~ what a BPE tokenizer counts for chat turns
    return {
        "id": f"chatcmpl-offline-{seed:016x}", "object": "chat.completion", "created": created, "model": model,
        "system_fingerprint": "fp_offline", "choices": choices,
        "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
    }  # fmt: skip
