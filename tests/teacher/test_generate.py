"""Generation against the fake server: faults, retries, cache, budget, ledger, several teachers."""

from __future__ import annotations

import json

import pytest

from curation.errors import UserError
from curation.records import insert_records, new_batch
from curation.teacher.config import get_teacher, save_teacher
from curation.teacher.engine import estimate_cost, generate
from curation.teacher.selection import Selection
from curation.workspace import Workspace
from tests.teacher.conftest import KEY_ENV, output_counts, teacher_cfg
from tests.teacher.fake_openai import FakeOpenAI


def test_faults_end_with_exactly_one_output_and_no_repeat(tws: Workspace, server: FakeOpenAI) -> None:
    # The timeout sits well above a normal answer's latency on a loaded machine (at 0.4 s, a busy CI run timed out
    # an ordinary request and counted an extra attempt) and well below the slow answer's.
    save_teacher(tws, teacher_cfg(server.base_url, timeout_s=1.5), replace=True)
    server.default_plan = [
        {"kind": "429", "retry_after": 0.02},
        {"kind": "500"},
        {"kind": "drop"},
        {"kind": "malformed"},
    ]
    server.plans["ticket 5:"] = [{"kind": "slow", "s": 3.0}]  # times out once, then answers
    res = generate(tws, "big")
    assert (res.status, res.done, res.failed, res.requests) == ("done", 12, 0, 12)
    assert set(output_counts(tws).values()) == {1}
    assert set(server.successes.values()) == {1}  # nothing asked again after it succeeded
    assert tws.scalar("SELECT count(*) FROM records WHERE response IS NULL OR mean_logprob IS NULL") == 0
    attempts = dict(tws.query("SELECT attempts, count(*) FROM teacher_ledger WHERE status = 'ok' GROUP BY attempts"))
    assert attempts == {5: 11, 2: 1}
    # the attempt abandoned after the timeout may be billed: its own ledger row, at the worst-case estimate
    cfg = get_teacher(tws, "big")
    msgs = tws.query("SELECT CAST(messages AS VARCHAR) FROM records WHERE prompt LIKE 'ticket 5:%'")[0][0]
    assert tws.query("SELECT status, attempts, cost_usd FROM teacher_ledger WHERE status <> 'ok'") == [
        ("possibly_billed", 1, pytest.approx(estimate_cost(cfg, json.loads(msgs))))]  # fmt: skip
    assert res.possibly_billed_usd == pytest.approx(estimate_cost(cfg, json.loads(msgs)))
    # the ledger, the outputs and the run agree on the money
    ledger = tws.scalar("SELECT sum(cost_usd) FROM teacher_ledger WHERE status = 'ok'")
    outputs = tws.scalar("SELECT sum(cost_usd) FROM teacher_outputs")
    run = tws.scalar("SELECT cost_usd FROM teacher_runs WHERE run_id = ?", [res.run_id])
    assert ledger > 0
    assert outputs == pytest.approx(ledger) and run == pytest.approx(ledger) and res.cost_usd == pytest.approx(ledger)
    row = tws.query_dicts("SELECT * FROM teacher_outputs LIMIT 1")[0]
    assert row["model"] == server.served_model and row["latency_ms"] > 0 and row["prompt_tokens"] > 0
    assert '"top_logprobs"' in row["response_logprobs"]


def test_rerun_is_free_and_teachers_sit_side_by_side(tws: Workspace, server: FakeOpenAI) -> None:
    generate(tws, "big")
    before = sum(server.attempts.values())
    again = generate(tws, "big", Selection(missing=False))
    assert (again.total, again.requests, sum(server.attempts.values())) == (0, 0, before)
    first = dict(tws.query("SELECT record_id, response FROM records"))
    save_teacher(tws, teacher_cfg(server.base_url, name="small", model="small-2026", params={"temperature": 0.5}))
    res = generate(tws, "small", Selection(missing=False, slice="billing"))
    assert res.done == 4
    assert tws.query("SELECT teacher, count(*) FROM teacher_outputs GROUP BY 1 ORDER BY 1") == [
        ("big", 12),
        ("small", 4),
    ]
    assert dict(tws.query("SELECT record_id, response FROM records")) == first  # the first answer stays


def test_same_request_is_paid_once(tws: Workspace, server: FakeOpenAI) -> None:
    msgs = tws.query("SELECT CAST(messages AS VARCHAR) FROM records ORDER BY record_id LIMIT 1")[0][0]
    with tws.transaction() as cur:
        b = new_batch(cur, "dupes.jsonl", "log")
        insert_records(cur, b, [{"messages": json.loads(msgs), "metadata": {"copy": i}} for i in range(3)])
    res = generate(tws, "big")
    assert (res.done, res.requests) == (15, 12)
    # a cleared output comes back from the cache at no cost
    with tws.transaction() as cur:
        cur.execute("DELETE FROM teacher_outputs WHERE record_id IN (SELECT record_id FROM records LIMIT 3)")
    n = sum(server.attempts.values())
    res2 = generate(tws, "big", Selection(missing=False))
    assert (res2.cached, res2.requests, res2.cost_usd, sum(server.attempts.values())) == (3, 0, 0.0, n)
    assert set(output_counts(tws).values()) == {1}


def test_budget_stops_before_exceeding(tws: Workspace, server: FakeOpenAI) -> None:
    cfg = get_teacher(tws, "big")
    msgs = [{"role": "system", "content": "x" * 60}, {"role": "user", "content": "ticket 10: xxxxxxxxxxxxxxxxxxx"}]
    budget = 4.5 * estimate_cost(cfg, msgs)
    res = generate(tws, "big", budget_usd=budget, concurrency=4)
    assert res.status == "budget"
    assert 0 < res.done < 12
    spent = tws.scalar("SELECT sum(cost_usd) FROM teacher_ledger")
    assert spent <= budget
    res2 = generate(tws, "big", budget_usd=1.0)
    assert res2.status == "done" and res.done + res2.done == 12
    assert set(server.successes.values()) == {1}


def test_refuses_without_terms_or_key(tws: Workspace, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    save_teacher(tws, teacher_cfg(server.base_url, terms_ack=False), replace=True)
    with pytest.raises(UserError, match="terms allow training"):
        generate(tws, "big")
    save_teacher(tws, teacher_cfg(server.base_url), replace=True)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(UserError, match=KEY_ENV):
        generate(tws, "big")
    assert sum(server.attempts.values()) == 0
    assert tws.scalar("SELECT count(*) FROM teacher_runs") == 0


def test_client_errors_fail_fast_and_are_recorded(tws: Workspace, server: FakeOpenAI, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-abcdefghijkl")
    res = generate(tws, "big", concurrency=1)
    # a refused key stops the run at the first answer instead of failing all 12 records one by one
    assert (res.status, res.done, res.failed, res.requests) == ("failed", 0, 1, 1)
    assert tws.query("SELECT DISTINCT status, http_status, attempts FROM teacher_ledger") == [("failed", 401, 1)]
    assert res.errors == ["HTTP 401: Incorrect API key provided: ***"]
    assert output_counts(tws)[1] == 0
    assert "sk-wrong" not in " ".join(res.errors)


def test_selection_where_and_bad_sql(tws: Workspace) -> None:
    res = generate(tws, "big", Selection(where="prompt LIKE 'ticket 1%'"))
    assert res.done == 3  # 1, 10, 11
    with pytest.raises(UserError):
        generate(tws, "big", Selection(where="1; DROP TABLE records"))
    assert tws.scalar("SELECT count(*) FROM records") == 12


def test_an_unreachable_teacher_stops_the_run_with_one_clear_error(tws: Workspace, server: FakeOpenAI) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    save_teacher(tws, teacher_cfg(f"http://127.0.0.1:{port}/v1", concurrency=1, max_retries=1), replace=True)
    res = generate(tws, "big")
    # one request found out; the run stops instead of failing all 12 records one by one
    assert res.status == "failed" and res.requests == 1 and res.failed == 1
    assert [e for e in res.errors if "cannot connect to" in e and f":{port}/v1" in e and "running?" in e]
    assert tws.scalar("SELECT count(*) FROM records WHERE response IS NULL") == 12


def test_a_teacher_without_a_key(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from distill.cli import main

    ws = str(tmp_path / "ws.duckdb")
    Workspace.open(ws).close()
    args = ["teachers", "add", "local", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--ack-terms", "-w", ws]
    assert main([*args, "--no-key"]) == 0
    assert "(no key)" in capsys.readouterr().out
    assert main(["teachers", "show", "local", "--json", "-w", ws]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["api_key_env"] == "" and shown["api_key_set"] is True
    assert main(args) == 1  # one of --key-env / --no-key / --from-run is required (one line, the studio's words)
    assert "--no-key" in capsys.readouterr().err
