"""One teacher request path: generate, batch, synth and judge each checked for terms, cache, budget and ledger.

Each purpose runs through its real entry point against the fake server on 127.0.0.1, and HTTP requests are
counted on the server. A client timeout is checked for the three purposes that send requests themselves (a Batch
API job is answered by the provider's job: no per-request client timeout applies to it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from curation.errors import UserError
from curation.teacher.batch import collect_batch, submit_batch
from curation.teacher.budget import estimate_cost
from curation.teacher.client import request_params
from curation.teacher.config import get_teacher, save_teacher
from curation.teacher.engine import generate
from curation.teacher.requests import TeacherSession
from curation.teacher.selection import Selection
from curation.teacher.store import cache_key, ledger_summary
from curation.teacher.synth import synth_inputs
from curation.workspace import Workspace
from distill.cli import main
from tests.teacher.conftest import teacher_cfg
from tests.teacher.fake_openai import FakeOpenAI
from train.judge import JUDGE_PARAMS, judge_items, judge_messages
from train.scoring import Item

ITEMS = [Item(i, "a", f"ticket {i}: refund my charge", s, '{"intent": "refund"}', None)
         for i, s in enumerate(["fine", "slowpoke", '{"intent": "login"}', "no idea"])]  # fmt: skip
SYNTH_PARAMS = {"temperature": 1.0, "max_tokens": 360}  # what synth asks 3 prompts with (max(256, 3 * 120))


def http_requests(server: FakeOpenAI) -> int:
    """Chat requests (every attempt), uploaded files and created batches: what could be billed."""
    return sum(server.attempts.values()) + len(server.files) + len(server.batches)


def run_generate(ws: Workspace, budget: float | None = None) -> Any:
    return generate(ws, "big", budget_usd=budget)


def run_batch(ws: Workspace, budget: float | None = None) -> Any:
    job = submit_batch(ws, "big", budget_usd=budget)
    return collect_batch(ws, job.job_id, wait=True, poll_s=0.01), job


def run_synth(ws: Workspace, budget: float | None = None, n: int = 3) -> Any:
    return synth_inputs(ws, "big", "shipping", n, n_examples=2, seed="fixed", budget_usd=budget)


def run_judge(ws: Workspace, budget: float | None = None) -> Any:
    return judge_items(ws, {"teacher": "big"}, "triage tickets", ITEMS, budget_usd=budget)[1]


def _generate_again(ws: Workspace) -> int:
    with ws.transaction() as cur:
        cur.execute("DELETE FROM teacher_outputs")
    res = generate(ws, "big", Selection(missing=False))
    assert (res.requests, res.cost_usd) == (0, 0.0)
    return res.cached


def _batch_again(ws: Workspace) -> int:
    with ws.transaction() as cur:  # the answers are lost from the records: the cache still has them
        cur.execute("DELETE FROM teacher_outputs")
        cur.execute("UPDATE records SET response = NULL")
    with pytest.raises(UserError, match="nothing to submit"):
        submit_batch(ws, "big")
    return ws.scalar("SELECT count(*) FROM teacher_outputs WHERE mode = 'cache'")


def _synth_again(ws: Workspace) -> int:
    with ws.transaction() as cur:  # as if killed after the answers were paid for, before the prompts were inserted
        cur.execute("DELETE FROM records WHERE origin = 'synthetic'")
    res = run_synth(ws)
    assert (res.n_requests, res.cost_usd) == (0, 0.0)
    return res.n_inserted


def _judge_again(ws: Workspace) -> int:
    rep = run_judge(ws)
    assert (rep.n_requests, rep.cost_usd) == (0, 0.0)
    return rep.n_cached


@dataclass
class Purpose:
    name: str
    run: Callable[..., Any]
    again: Callable[[Workspace], int]  # the same requests once more; returns what came from the cache
    expected_again: int


PURPOSES = [
    Purpose("generate", run_generate, _generate_again, 12),
    Purpose("batch", run_batch, _batch_again, 12),
    Purpose("synth", run_synth, _synth_again, 1),  # the fake's 3 prompts for 3: one new, two duplicates
    Purpose("judge", run_judge, _judge_again, 4),
]
IDS = [p.name for p in PURPOSES]


@pytest.mark.parametrize("purpose", PURPOSES, ids=IDS)
def test_terms_are_refused_when_not_acknowledged(tws: Workspace, server: FakeOpenAI, purpose: Purpose) -> None:
    save_teacher(tws, teacher_cfg(server.base_url, terms_ack=False), replace=True)
    with pytest.raises(UserError, match="terms allow training"):
        purpose.run(tws)
    assert http_requests(server) == 0
    assert tws.scalar("SELECT count(*) FROM teacher_ledger") == 0
    assert tws.scalar("SELECT count(*) FROM teacher_batches") == 0


@pytest.mark.parametrize("purpose", PURPOSES, ids=IDS)
def test_a_repeated_request_is_a_cache_hit_and_the_ledger_names_the_purpose(
    tws: Workspace, server: FakeOpenAI, purpose: Purpose
) -> None:
    purpose.run(tws)
    sent = http_requests(server)
    assert sent > 0
    rows = tws.query("SELECT DISTINCT kind, status FROM teacher_ledger")
    assert rows == [(purpose.name, "ok")]
    n_ledger = tws.scalar("SELECT count(*) FROM teacher_ledger")
    assert purpose.again(tws) == purpose.expected_again
    assert http_requests(server) == sent  # nothing sent again
    assert tws.scalar("SELECT count(*) FROM teacher_ledger") == n_ledger  # a cache hit is not a request


def _est(ws: Workspace, messages: list[dict[str, Any]], params: dict[str, Any] | None = None, **kw: Any) -> float:
    return estimate_cost(get_teacher(ws, "big"), messages, params, **kw)


# In the budget tests every answer takes 1 s, so the pool's threads all reserve before any answer settles: then
# exactly as many requests go out as the budget has room for at their worst case.


def test_a_budget_stops_generate_before_it_is_exceeded(tws: Workspace, server: FakeOpenAI) -> None:
    server.latency = 1.0
    msgs = json.loads(tws.query("SELECT CAST(messages AS VARCHAR) FROM records ORDER BY length(prompt) DESC")[0][0])
    budget = 2.5 * _est(tws, msgs)
    res = run_generate(tws, budget)
    assert res.status == "budget" and res.requests == 2 and sum(server.attempts.values()) == 2
    assert tws.scalar("SELECT sum(cost_usd) FROM teacher_ledger") <= budget


def test_a_budget_stops_batch_before_it_is_exceeded(tws: Workspace, server: FakeOpenAI) -> None:
    msgs = json.loads(tws.query("SELECT CAST(messages AS VARCHAR) FROM records ORDER BY length(prompt) DESC")[0][0])
    budget = 2.5 * _est(tws, msgs, batch=True)  # no HTTP per request: the whole plan is reserved at once
    done, job = run_batch(tws, budget)
    assert (job.n_requests, job.n_over_budget, done.n_attached) == (2, 10, 2)
    assert tws.scalar("SELECT sum(cost_usd) FROM teacher_ledger WHERE kind = 'batch'") <= budget
    with pytest.raises(UserError, match="budget covers none"):
        submit_batch(tws, "big", budget_usd=0.0)


def test_a_budget_stops_synth_before_it_is_exceeded(tws: Workspace, server: FakeOpenAI) -> None:
    # 60 prompts: three requests at once (25, 25, 10 prompts; output caps 3,000, 3,000 and 1,200 tokens, about $0.03,
    # $0.03 and $0.013 at worst): $0.05 has room for one or two of them, never all three
    server.latency = 1.0
    res = run_synth(tws, 0.05, n=60)
    assert res.status == "budget" and 1 <= res.n_requests <= 2 and res.n_inserted > 0
    assert tws.scalar("SELECT sum(cost_usd) FROM teacher_ledger") <= 0.05
    assert sum(server.attempts.values()) == res.n_requests


def test_a_budget_stops_judge_before_it_is_exceeded(tws: Workspace, server: FakeOpenAI) -> None:
    longest = max((judge_messages("triage tickets", i.prompt, i.teacher, i.student) for i in ITEMS),
                  key=lambda m: len(json.dumps(m)))  # fmt: skip
    budget = 2.5 * _est(tws, longest, JUDGE_PARAMS)
    server.latency = 1.0
    rep = run_judge(tws, budget)
    assert rep.status == "budget" and rep.n_requests == 2 and sum(server.attempts.values()) == 2
    assert tws.scalar("SELECT sum(cost_usd) FROM teacher_ledger") <= budget


TIMEOUTS = [  # purpose, what marks the request that times out once, its parameters
    ("generate", "ticket 5:", None),
    ("synth", "(set 1)", SYNTH_PARAMS),
    ("judge", "slowpoke", JUDGE_PARAMS),
]


@pytest.mark.parametrize(("name", "needle", "params"), TIMEOUTS, ids=[t[0] for t in TIMEOUTS])
def test_a_client_timeout_is_ledgered_as_possibly_billed(
    tws: Workspace, server: FakeOpenAI, name: str, needle: str, params: dict[str, Any] | None
) -> None:
    # a normal answer takes milliseconds; the slow one outlasts the client's timeout once, then answers
    save_teacher(tws, teacher_cfg(server.base_url, timeout_s=1.5), replace=True)
    server.plans[needle] = [{"kind": "slow", "s": 3.0}]
    res = {p.name: p for p in PURPOSES}[name].run(tws)
    [content] = [c for c in server.attempts if needle in c]
    assert server.attempts[content] == 2
    cfg = get_teacher(tws, "big")
    messages = json.loads(content)
    est = estimate_cost(cfg, messages, params)
    key = cache_key(cfg.model, messages, request_params(cfg, params))
    rows = tws.query("SELECT kind, status, attempts, cost_usd FROM teacher_ledger WHERE cache_key = ? ORDER BY status",
                     [key])  # fmt: skip
    assert rows == [(name, "ok", 2, pytest.approx(rows[0][3])), (name, "possibly_billed", 1, pytest.approx(est))]
    assert res.possibly_billed_usd == pytest.approx(est)
    spend = ledger_summary(tws)
    assert spend["possibly_billed_usd"] == pytest.approx(est)
    assert spend["cost_usd"] == pytest.approx(
        tws.scalar("SELECT sum(cost_usd) FROM teacher_ledger WHERE status = 'ok'")
    )


def test_the_budget_counts_an_abandoned_attempt_and_refuses_its_retry(tws: Workspace, server: FakeOpenAI) -> None:
    save_teacher(tws, teacher_cfg(server.base_url, timeout_s=1.5), replace=True)
    server.plans["ticket 0:"] = [{"kind": "slow", "s": 3.0}]
    msgs = json.loads(tws.query("SELECT CAST(messages AS VARCHAR) FROM records WHERE prompt LIKE 'ticket 0:%'")[0][0])
    budget = 1.5 * _est(tws, msgs)  # room for one attempt: the abandoned one may be billed, so no retry
    res = generate(tws, "big", Selection(record_ids=[1]), budget_usd=budget)
    assert (res.status, res.requests, res.failed) == ("budget", 1, 1)
    assert "not retried (budget)" in res.errors[0]
    assert sum(server.attempts.values()) == 1
    assert tws.scalar("SELECT sum(cost_usd) FROM teacher_ledger") <= budget


def test_one_synchronous_request_for_a_gateway(tws: Workspace, server: FakeOpenAI) -> None:
    msgs = [{"role": "user", "content": "ticket 99: package delivery late"}]
    with TeacherSession(tws, "big") as session:
        first = session.ask("generate", msgs)
        assert first.source == "sent" and first.answer is not None and first.answer.logprobs
        again = session.ask("generate", msgs)
        assert again.source == "cache" and again.answer is not None
        assert again.answer.response == first.answer.response
    assert sum(server.attempts.values()) == 1
    assert tws.query("SELECT kind, status FROM teacher_ledger") == [("generate", "ok")]  # committed by close()
    assert tws.scalar("SELECT count(*) FROM teacher_outputs") == 0  # no records: nothing attached


def test_teachers_list_shows_possibly_billed_apart(tws: Workspace, server: FakeOpenAI, capsys) -> None:
    save_teacher(tws, teacher_cfg(server.base_url, timeout_s=1.5), replace=True)
    server.plans["ticket 5:"] = [{"kind": "slow", "s": 3.0}]
    res = generate(tws, "big")
    path = str(tws.path)
    tws.close()
    assert main(["teachers", "list", "-w", path, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["spend"]["cost_usd"] == pytest.approx(res.cost_usd)
    assert row["spend"]["possibly_billed_usd"] == pytest.approx(res.possibly_billed_usd) and res.possibly_billed_usd > 0
    assert main(["teachers", "list", "-w", path]) == 0
    out = capsys.readouterr()
    assert "possibly billed $" in out.out and "abandoned after a timeout" in out.err
