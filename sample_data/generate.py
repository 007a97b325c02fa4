"""Deterministic generator of the sample workspace's production logs (support-ticket triage).

    python -m sample_data.generate            # writes sample_data/production_logs.jsonl.gz and ground_truth.json

Seeded and free of wall-clock input: running it twice gives identical bytes. See sample_data/README.md.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from sample_data.templates import FILL, INTENTS, NON_EN, SLICES, SPAM, SUFFIXES, SYSTEM, URGENCIES

HERE = Path(__file__).resolve().parent
N = 5000
SEED = 20261122
MODEL = "gpt-4o-2024-08-06"


@dataclass(frozen=True)
class ErrorRates:
    """How often the teacher answers wrongly: a wrong intent, a wrong urgency, an answer cut off mid-JSON."""

    wrong_intent: float = 0.04
    wrong_urgency: float = 0.02
    invalid_json: float = 0.015


def fill(rng: random.Random, text: str) -> str:
    """A template with its ``{order}``, ``{amount}``, ``{days}`` and ``FILL`` placeholders filled in."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "order":
            return f"#{rng.randint(100000, 999999)}"
        if key == "amount":
            return f"${rng.randint(5, 400)}.{rng.randint(0, 99):02d}"
        if key == "days":
            return str(rng.randint(2, 28))
        return rng.choice(FILL[key])

    return re.sub(r"\{(\w+)\}", sub, text)


def typo(rng: random.Random, text: str) -> str:
    """``text`` with two neighbouring characters swapped, twice."""
    chars = list(text)
    for _ in range(2):
        i = rng.randrange(1, len(chars) - 2)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def tokens(answer: str) -> list[str]:
    """The answer split into the tokens its logprobs are given for (joined, they give the answer back)."""
    return re.findall(r'[{}":,]+|_[a-z]+|[A-Za-z]+|\s+|[^\sA-Za-z{}":,_]+|_', answer)


def token_logprobs(rng: random.Random, answer: str, weak: set[int], alts: dict[int, str], top: int = 3) -> list[dict]:
    """Per-token logprobs with ``top`` alternatives: near 0 for most tokens, low on the ``weak`` ones, where the
    second alternative is ``alts[i]`` (the right answer, when the token is a mistake)."""
    out = []
    for i, tok in enumerate(tokens(answer)):
        lp = -rng.uniform(1.5, 4.0) if i in weak else -abs(rng.gauss(0, 0.02 if rng.random() > 0.05 else 0.4))
        alt = alts.get(i, tok.upper() if tok.strip() else tok + " ")
        alt_lp = math.log(max(1e-9, 1 - math.exp(lp))) if i in weak else lp - rng.uniform(3, 9)
        top_lps = [{"token": tok, "logprob": round(lp, 5), "bytes": list(tok.encode())},
               {"token": alt, "logprob": round(alt_lp, 5), "bytes": list(alt.encode())},
               {"token": "\n", "logprob": round(min(lp, alt_lp) - 4, 5), "bytes": [10]}]  # fmt: skip
        for k in range(3, top):  # more alternatives than the logs hold: ever less likely variants, no draws
            extra = tok + "." * (k - 2)
            top_lps.append(
                {"token": extra, "logprob": round(min(lp, alt_lp) - 4 - k, 5), "bytes": list(extra.encode())}
            )
        out.append({"token": tok, "logprob": round(lp, 5), "bytes": list(tok.encode()), "top_logprobs": top_lps[:top]})
    return out


def generate() -> tuple[list[dict], dict]:
    """The records and the ground truth (planted duplicates and errors)."""
    rng = random.Random(SEED)
    names = list(SLICES)
    weights = [SLICES[s][0] for s in names]
    rows: list[dict] = []
    truth: dict = {"near_duplicate_groups": [], "teacher_errors": {}, "slices": {}}
    base_tickets: list[tuple[str, str, str]] = []
    i = 0
    while len(rows) < N:
        i += 1
        tid = f"T-{i:06d}"
        lang = "en"
        kind = rng.random()
        if kind < 0.03:
            lang = rng.choice(sorted(NON_EN))
            tpl, intent, slice_ = NON_EN[lang]
            text = fill(rng, tpl)
        elif kind < 0.12 and base_tickets:  # near-duplicate of an earlier ticket
            orig_tid, text0, slice_ = rng.choice(base_tickets)
            intent = rows[int(orig_tid[2:]) - 1]["_intent"] if int(orig_tid[2:]) <= len(rows) else None
            if intent is None:
                continue
            text = typo(rng, text0) if rng.random() < 0.5 else "Hi, " + text0[0].lower() + text0[1:] + " Thanks."
            truth["near_duplicate_groups"].append([orig_tid, tid])
        else:
            slice_ = rng.choices(names, weights)[0]
            intents = SLICES[slice_][1]
            intent = rng.choice(sorted(intents))
            text = fill(rng, rng.choice(intents[intent][1]))
            if rng.random() < 0.3:
                text += " " + rng.choice(SUFFIXES)
            base_tickets.append((tid, text, slice_))
        urgency = dict(SLICES[slice_][1])[intent][0] if intent in SLICES[slice_][1] else "medium"
        rows.append(_record(rng, tid, text, slice_, intent, urgency, lang, truth))
    spam, spam_slice, spam_intent, spam_urgency = SPAM
    group = []
    for j in range(45):  # template spam replaces records at fixed positions
        pos = 100 + j * 97
        tid = rows[pos]["metadata"]["ticket_id"]
        rows[pos] = _record(rng, tid, fill(rng, spam), spam_slice, spam_intent, spam_urgency, "en", truth)
        group.append(tid)
    truth["near_duplicate_groups"].append(group)
    for r in rows:
        r.pop("_intent", None)
        s = r["metadata"]["product_area"]
        truth["slices"][s] = truth["slices"].get(s, 0) + 1
    truth["teacher_errors"] = {k: v for k, v in truth["teacher_errors"].items()
                               if any(r["metadata"]["ticket_id"] == k for r in rows)}  # fmt: skip
    return rows, truth


def _record(
    rng: random.Random, tid: str, text: str, slice_: str, intent: str, urgency: str, lang: str, truth: dict
) -> dict:
    answer, error, weak, alts = teacher_answer(rng, text, intent, urgency)
    toks = tokens(answer)
    if error:
        truth["teacher_errors"][tid] = error
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    if rng.random() < 0.03:
        messages[1:1] = [
            {"role": "user", "content": "Hello?"},
            {"role": "assistant", "content": "Hi! How can I help you today?"},
        ]
    created = 1790812800 + rng.randint(0, 30 * 86400)
    meta = {"ticket_id": tid, "product_area": slice_, "customer_tier": rng.choices(["free", "pro", "enterprise"], [6, 3, 1])[0],
            "channel": rng.choice(["email", "chat", "web_form", "mobile_app"]), "language": lang}  # fmt: skip
    if rng.random() < 0.25:
        meta["reference"] = json.dumps({"intent": intent, "urgency": urgency})
    n_in = 60 + len(text) // 4
    return {
        "_intent": intent,
        "request": {
            "model": MODEL,
            "messages": messages,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 3,
            "response_format": {"type": "json_object"},
        },
        "response": {
            "id": f"chatcmpl-{tid}",
            "object": "chat.completion",
            "created": created,
            "model": MODEL,
            "system_fingerprint": "fp_5f1c2e",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "logprobs": {"content": token_logprobs(rng, answer, weak, alts)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": n_in, "completion_tokens": len(toks), "total_tokens": n_in + len(toks)},
        },
        "metadata": meta,
        "started_at": _iso(created),
        "latency_ms": round(300 + rng.random() * 900 + len(toks) * 8, 1),
    }


def summarise(text: str) -> str:
    """The teacher's one-sentence summary of a ticket: its first sentence, at most 70 characters."""
    return re.sub(r"\s+", " ", text.split(".")[0])[:70]


def mark_weak(toks: list[str], wrong: str, right: str, weak: set[int], alts: dict[int, str]) -> None:
    """Make the first token of the ``wrong`` label weak, with the ``right`` label's first token as alternative."""
    first = wrong.split("_")[0]
    for k, t in enumerate(toks):
        if t == first:
            weak.add(k)
            alts[k] = right.split("_")[0]
            return


def teacher_answer(
    rng: random.Random, text: str, intent: str, urgency: str, rates: ErrorRates = ErrorRates()
) -> tuple[str, str | None, set[int], dict[int, str]]:
    """The teacher's JSON answer to a ticket of known ``intent`` and ``urgency``, with a seeded mistake now and
    then (``rates``): (answer, error kind or None, weak token positions, right alternatives by position)."""
    answer_intent, answer_urgency, error = intent, urgency, None
    r = rng.random()
    if r < rates.wrong_intent:
        answer_intent, error = rng.choice([x for x in INTENTS if x != intent]), "wrong_intent"
    elif r < rates.wrong_intent + rates.wrong_urgency:
        answer_urgency, error = rng.choice([u for u in URGENCIES if u != urgency]), "wrong_urgency"
    answer = json.dumps({"intent": answer_intent, "urgency": answer_urgency, "summary": summarise(text)})
    if rng.random() < rates.invalid_json:
        answer, error = answer[: len(answer) // 2], "invalid_json"
    toks = tokens(answer)
    weak: set[int] = set()
    alts: dict[int, str] = {}
    if error == "wrong_intent":
        mark_weak(toks, answer_intent, intent, weak, alts)
    elif error == "wrong_urgency":
        mark_weak(toks, answer_urgency, urgency, weak, alts)
    elif error == "invalid_json":
        weak.add(len(toks) - 1)
    return answer, error, weak, alts


def _iso(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write(dest: Path = HERE) -> Path:
    """Write production_logs.jsonl.gz (stable bytes: gzip mtime 0) and ground_truth.json into ``dest``."""
    rows, truth = generate()
    path = dest / "production_logs.jsonl.gz"
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        for r in rows:
            gz.write(json.dumps(r, ensure_ascii=False).encode() + b"\n")
    (dest / "ground_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    p = write()
    print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")
