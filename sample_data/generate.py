"""Deterministic generator of the sample workspace's production logs (support-ticket triage).

    python sample_data/generate.py            # writes sample_data/production_logs.jsonl.gz and ground_truth.json

Seeded and free of wall-clock input: running it twice gives identical bytes. See sample_data/README.md.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
N = 5000
SEED = 20261122
MODEL = "gpt-4o-2024-08-06"
SYSTEM = (
    "You triage customer support tickets. Answer with JSON only: "
    '{"intent": <one of the allowed intents>, "urgency": "low"|"medium"|"high"|"critical", "summary": <one sentence>}.'
)
# slice -> (share, {intent: (urgency, [templates])})
SLICES: dict[str, tuple[float, dict[str, tuple[str, list[str]]]]] = {
    "billing": (
        0.30,
        {
            "double_charge": (
                "high",
                [
                    "I was charged twice for order {order}, {amount} each time.",
                    "Why do I see two charges of {amount} on my card for {order}?",
                ],
            ),
            "refund_status": (
                "medium",
                [
                    "Where is my refund for order {order}? It has been {days} days.",
                    "I returned {product} {days} days ago and still no refund.",
                ],
            ),
            "invoice_request": (
                "low",
                ["Can you send me an invoice for order {order}?", "I need a VAT invoice for my purchase of {product}."],
            ),
            "payment_failed": (
                "medium",
                [
                    "My payment keeps failing at checkout for {product}.",
                    "Card declined when paying {amount}, but the bank says it's fine.",
                ],
            ),
        },
    ),
    "shipping": (
        0.22,
        {
            "late_delivery": (
                "medium",
                [
                    "My order {order} was due {days} days ago and hasn't arrived.",
                    "Where is my package? Tracking hasn't moved for {days} days.",
                ],
            ),
            "wrong_address": (
                "high",
                [
                    "I entered the wrong address for order {order}, please change it to {city}.",
                    "Order {order} is going to my old address in {city}!",
                ],
            ),
            "damaged_item": (
                "medium",
                ["The {product} arrived broken, the box was crushed.", "My {product} came damaged. Order {order}."],
            ),
        },
    ),
    "account": (
        0.16,
        {
            "password_reset": (
                "low",
                [
                    "I can't reset my password, the email never arrives.",
                    "Password reset link expired, how do I get a new one?",
                ],
            ),
            "update_details": (
                "low",
                [
                    "How do I change the email on my account to {name}@example.com?",
                    "Please update my phone number on file.",
                ],
            ),
            "close_account": (
                "medium",
                ["Please delete my account and all my data.", "I want to close my account, how?"],
            ),
        },
    ),
    "technical": (
        0.14,
        {
            "app_crash": (
                "high",
                [
                    "The app crashes every time I open my orders on {device}.",
                    "Your app closes right after login on my {device}.",
                ],
            ),
            "login_error": (
                "medium",
                ["I get error 500 when logging in.", "Login page just spins forever on {device}."],
            ),
            "feature_question": (
                "low",
                ["Does the app support dark mode on {device}?", "Can I export my order history to CSV?"],
            ),
        },
    ),
    "subscriptions": (
        0.09,
        {
            "cancel_subscription": (
                "medium",
                [
                    "Cancel my Plus subscription before it renews on the {days}th.",
                    "How do I stop the monthly charge of {amount}?",
                ],
            ),
            "upgrade_plan": (
                "low",
                ["I'd like to upgrade to the annual plan.", "What do I get with Premium compared to Plus?"],
            ),
        },
    ),
    "product_info": (
        0.08,
        {
            "availability": (
                "low",
                ["When will the {product} be back in stock?", "Is the {product} available in {city}?"],
            ),
            "specs_question": (
                "low",
                ["What is the battery life of the {product}?", "Is the {product} compatible with {device}?"],
            ),
        },
    ),
    "security": (
        0.01,
        {
            "account_takeover": (
                "critical",
                [
                    "Someone logged into my account from {city} and changed my email!",
                    "I didn't place order {order}, my account was hacked.",
                ],
            ),
            "phishing_report": (
                "high",
                [
                    "I got an email pretending to be you asking for my card number.",
                    "Is this text message about a refund of {amount} from you? Looks like phishing.",
                ],
            ),
        },
    ),
}
NON_EN = {
    "es": ("Me cobraron dos veces el pedido {order}.", "double_charge", "billing"),
    "de": ("Mein Paket {order} ist seit {days} Tagen überfällig.", "late_delivery", "shipping"),
    "fr": ("L'application plante sur mon {device}.", "app_crash", "technical"),
}
FILL = {
    "product": ["headphones", "smart watch", "coffee maker", "running shoes", "desk lamp", "blender", "backpack"],
    "city": ["Lisbon", "Austin", "Osaka", "Leeds", "Lyon", "Denver"],
    "device": ["iPhone 15", "Pixel 8", "iPad", "Galaxy S23"],
    "name": ["maria", "tom", "li.wei", "sam"],
}
INTENTS = sorted({i for _, (_, intents) in SLICES.items() for i in intents})


def _fill(rng: random.Random, text: str) -> str:
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


def _typo(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(2):
        i = rng.randrange(1, len(chars) - 2)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _tokens(answer: str) -> list[str]:
    return re.findall(r'[{}":,]+|_[a-z]+|[A-Za-z]+|\s+|[^\sA-Za-z{}":,_]+', answer)


def _logprobs(rng: random.Random, answer: str, weak: set[int], alts: dict[int, str]) -> list[dict]:
    out = []
    for i, tok in enumerate(_tokens(answer)):
        lp = -rng.uniform(1.5, 4.0) if i in weak else -abs(rng.gauss(0, 0.02 if rng.random() > 0.05 else 0.4))
        alt = alts.get(i, tok.upper() if tok.strip() else tok + " ")
        alt_lp = math.log(max(1e-9, 1 - math.exp(lp))) if i in weak else lp - rng.uniform(3, 9)
        top = [{"token": tok, "logprob": round(lp, 5), "bytes": list(tok.encode())},
               {"token": alt, "logprob": round(alt_lp, 5), "bytes": list(alt.encode())},
               {"token": "\n", "logprob": round(min(lp, alt_lp) - 4, 5), "bytes": [10]}]  # fmt: skip
        out.append({"token": tok, "logprob": round(lp, 5), "bytes": list(tok.encode()), "top_logprobs": top})
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
            text = _fill(rng, tpl)
        elif kind < 0.12 and base_tickets:  # near-duplicate of an earlier ticket
            orig_tid, text0, slice_ = rng.choice(base_tickets)
            intent = rows[int(orig_tid[2:]) - 1]["_intent"] if int(orig_tid[2:]) <= len(rows) else None
            if intent is None:
                continue
            text = _typo(rng, text0) if rng.random() < 0.5 else "Hi, " + text0[0].lower() + text0[1:] + " Thanks."
            truth["near_duplicate_groups"].append([orig_tid, tid])
        else:
            slice_ = rng.choices(names, weights)[0]
            intents = SLICES[slice_][1]
            intent = rng.choice(sorted(intents))
            text = _fill(rng, rng.choice(intents[intent][1]))
            if rng.random() < 0.3:
                text += " " + rng.choice(
                    ["Please help.", "This is urgent.", "Thanks in advance.", "I've tried twice already."]
                )
            base_tickets.append((tid, text, slice_))
        urgency = dict(SLICES[slice_][1])[intent][0] if intent in SLICES[slice_][1] else "medium"
        rows.append(_record(rng, tid, text, slice_, intent, urgency, lang, truth))
    spam = "Automated form submission: order {order} status request. Reply to noreply@shop.example."
    group = []
    for j in range(45):  # template spam replaces records at fixed positions
        pos = 100 + j * 97
        tid = rows[pos]["metadata"]["ticket_id"]
        rows[pos] = _record(rng, tid, _fill(rng, spam), "shipping", "late_delivery", "low", "en", truth)
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
    summary = re.sub(r"\s+", " ", text.split(".")[0])[:70]
    answer_intent, answer_urgency, error = intent, urgency, None
    r = rng.random()
    if r < 0.04:
        answer_intent, error = rng.choice([x for x in INTENTS if x != intent]), "wrong_intent"
    elif r < 0.06:
        answer_urgency, error = (
            rng.choice([u for u in ("low", "medium", "high", "critical") if u != urgency]),
            "wrong_urgency",
        )
    answer = json.dumps({"intent": answer_intent, "urgency": answer_urgency, "summary": summary})
    if rng.random() < 0.015:
        answer, error = answer[: len(answer) // 2], "invalid_json"
    toks = _tokens(answer)
    weak: set[int] = set()
    alts: dict[int, str] = {}
    if error in ("wrong_intent", "wrong_urgency"):
        wrong = answer_intent if error == "wrong_intent" else answer_urgency
        right = intent if error == "wrong_intent" else urgency
        first = wrong.split("_")[0]
        for k, t in enumerate(toks):
            if t == first:
                weak.add(k)
                alts[k] = right.split("_")[0]
                break
    elif error == "invalid_json":
        weak.add(len(toks) - 1)
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
                    "logprobs": {"content": _logprobs(rng, answer, weak, alts)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": n_in, "completion_tokens": len(toks), "total_tokens": n_in + len(toks)},
        },
        "metadata": meta,
        "started_at": _iso(created),
        "latency_ms": round(300 + rng.random() * 900 + len(toks) * 8, 1),
    }


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
