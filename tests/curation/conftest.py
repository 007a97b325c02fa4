"""Small real workspaces for curation tests, and one MiniLM per test session."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from curation.records import finish_batch, insert_records, new_batch
from curation.workspace import Workspace

# Hand-written support tickets per slice: a few near-duplicate pairs (paraphrases) on purpose.
TICKETS: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for my subscription this month",
        "I got billed two times for my subscription this month",
        "How do I download last year's invoices?",
        "Please refund the annual plan I bought by mistake",
        "My credit card was declined when renewing",
        "Can I switch from monthly to yearly billing?",
        "Why did my invoice total go up?",
        "The VAT number on my invoice is wrong",
        "I need a receipt for my last payment",
        "Cancel my plan and stop charging my card",
        "Do you offer discounts for nonprofits?",
        "The payment page keeps timing out",
    ],
    "login": [
        "I can't log in, it says my password is wrong",
        "I cannot sign in because it says the password is incorrect",
        "The two-factor code never arrives by SMS",
        "My account got locked after too many attempts",
        "How do I reset my password?",
        "Single sign-on with Okta fails with an error",
        "I lost my phone with the authenticator app",
        "The login page is blank in Safari",
    ],
    "shipping": [
        "Where is my package? Tracking hasn't updated in a week",
        "My order arrived damaged",
        "Can I change the delivery address after ordering?",
        "Do you ship to Norway?",
    ],
    "security": [
        "Someone accessed my account from another country",
        "I think my API key leaked on GitHub",
    ],
}
INTENTS = {
    "billing": "billing_issue",
    "login": "login_problem",
    "shipping": "delivery",
    "security": "security_incident",
}


def _logprobs(text: str, low: bool) -> list[dict[str, Any]]:
    # Tokens that concatenate to the response text, as OpenAI logprobs do.
    toks = [text[i : i + 4] for i in range(0, len(text), 4)]
    lp = math.log(0.4) if low else math.log(0.97)
    return [{"token": t, "logprob": lp, "top_logprobs": []} for t in toks]


def ticket_rows(*, with_logprobs: bool = True) -> list[dict[str, Any]]:
    rows = []
    n = 0
    for slc, prompts in TICKETS.items():
        for i, p in enumerate(prompts):
            n += 1
            resp = json.dumps(
                {"intent": INTENTS[slc], "urgency": "high" if slc == "security" else "low", "summary": p[:30]}
            )
            low = n % 7 == 0  # a few low-confidence answers
            rows.append(
                {
                    "messages": [{"role": "system", "content": "Triage the ticket."}, {"role": "user", "content": p}],
                    "response": resp,
                    "response_logprobs": _logprobs(resp, low) if with_logprobs else None,
                    "slice": slc,
                    "reference": json.dumps({"intent": INTENTS[slc]}) if i % 2 == 0 else None,
                    "metadata": {"product_area": slc, "lang": "en" if i % 3 else "de"},
                    "logged_at": f"2026-01-{1 + (n % 28):02d} 10:00:00",
                    "teacher_model": "big-teacher",
                }
            )
    return rows


def build_workspace(path: Path, rows: list[dict[str, Any]] | None = None) -> Workspace:
    ws = Workspace.open(path)
    rows = ticket_rows() if rows is None else rows
    with ws.transaction() as cur:
        b = new_batch(cur, "tickets.jsonl", "log")
        ids = insert_records(cur, b, rows)
        finish_batch(cur, b, n_lines=len(rows), n_imported=len(ids), n_duplicates=0, n_quarantined=0)
    return ws


@pytest.fixture
def ws(tmp_path: Path):
    w = build_workspace(tmp_path / "t.duckdb")
    yield w
    w.close()


@pytest.fixture(scope="session")
def minilm():
    """Load MiniLM once per session (in the dtype the pipeline picks on this CPU)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from curation.embeddings import load_model, resolve_model

    ref = resolve_model(None)
    return load_model(ref)
