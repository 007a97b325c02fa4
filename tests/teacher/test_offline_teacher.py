"""The offline sample teacher over real HTTP with the real ``openai`` client, and `distill demo` running the loop on it.

The server runs detached (as `distill demo` starts it) on an ephemeral port on 127.0.0.1; every test stops what it
started.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from curation.importing import import_file
from curation.teacher.config import DEFAULT_PARAMS, TeacherConfig, save_teacher
from curation.teacher.synth import synth_inputs
from curation.workspace import Workspace
from sample_data import LOGS
from sample_data.offline_teacher import process
from sample_data.offline_teacher.server import MODEL
from sample_data.offline_teacher.tickets import match
from train.judge import JUDGE_PARAMS, judge_messages, parse_grade

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    """The sample's 5,000 log records."""
    with gzip.open(LOGS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A detached offline teacher without latency, stopped afterwards."""
    artifacts = tmp_path_factory.mktemp("offline") / "ws.artifacts"
    running, started = process.start(artifacts, port=0, latency_ms=0)
    assert started
    yield running.base_url
    assert process.stop(artifacts) is not None
    assert process.running(artifacts) is None and process.health(running.port) is None


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=base_url, api_key="any-key-will-do", max_retries=0, timeout=30)
    yield c
    c.close()


def _ask(client: openai.OpenAI, messages: list[dict[str, Any]], **params: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=messages, **{**DEFAULT_PARAMS, **params})  # type: ignore[arg-type]


def _labels(row: dict[str, Any]) -> dict[str, str]:
    return json.loads(row["metadata"]["reference"])


def test_triage_agrees_with_the_sample_reference_and_shows_its_mistakes(
    client: openai.OpenAI, rows: list[dict[str, Any]]
) -> None:
    sample = [r for r in rows if "reference" in r["metadata"]][:200]
    agree = mistakes = 0
    for r in sample:
        res = _ask(client, r["request"]["messages"])
        choice = res.choices[0]
        answer = json.loads(choice.message.content)  # valid JSON every time
        ref = _labels(r)
        assert res.model == MODEL and res.usage.prompt_tokens > 0 and res.usage.completion_tokens > 0
        toks = choice.logprobs.content
        assert "".join(t.token for t in toks) == choice.message.content
        assert all(len(t.top_logprobs) == 5 and len({a.token for a in t.top_logprobs}) == 5 for t in toks)
        if answer["intent"] == ref["intent"] and answer["urgency"] == ref["urgency"]:
            agree += 1
            continue
        mistakes += 1  # a seeded mistake: low logprob on the wrong token, the right one among its alternatives
        field = "urgency" if answer["intent"] == ref["intent"] else "intent"
        weak = next(t for t in toks if t.token == answer[field].split("_")[0])
        assert weak.logprob < -1.4
        assert ref[field].split("_")[0] in [a.token for a in weak.top_logprobs]
    print(f"offline teacher agrees with the sample reference on {agree}/{len(sample)} tickets")
    assert 0.9 <= agree / len(sample) < 1.0 and mistakes == len(sample) - agree


def test_non_english_and_multi_turn_tickets(client: openai.OpenAI, rows: list[dict[str, Any]]) -> None:
    odd = [r for r in rows if "reference" in r["metadata"]
           and (r["metadata"]["language"] != "en" or len(r["request"]["messages"]) > 2)]  # fmt: skip
    assert {r["metadata"]["language"] for r in odd} >= {"es", "de", "fr"} and any(
        len(r["request"]["messages"]) > 2 for r in odd
    )
    right = sum(
        json.loads(_ask(client, r["request"]["messages"]).choices[0].message.content)["intent"] == _labels(r)["intent"]
        for r in odd
    )
    assert right / len(odd) >= 0.9


def test_same_request_same_answer_and_the_parameters_are_honoured(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "You triage customer support tickets."},
                {"role": "user", "content": "Order #123456 is going to my old address in Osaka!"}]  # fmt: skip
    a, b = _ask(client, messages), _ask(client, messages)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert [t.logprob for t in a.choices[0].logprobs.content] == [t.logprob for t in b.choices[0].logprobs.content]
    assert json.loads(a.choices[0].message.content)["intent"] == "wrong_address"
    short = _ask(client, messages, max_tokens=4, logprobs=False)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 4
    assert short.choices[0].logprobs is None
    two = _ask(client, messages, n=2, max_completion_tokens=3, max_tokens=None, top_logprobs=1)
    assert [c.index for c in two.choices] == [0, 1]
    assert all(len(t.top_logprobs) == 1 for t in two.choices[1].logprobs.content)
    other = _ask(client, [{"role": "user", "content": "Tell me a joke about databases."}])
    assert other.choices[0].message.content and other.choices[0].logprobs.content
    with pytest.raises(openai.NotFoundError, match=MODEL):
        client.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="streaming"):
        client.chat.completions.create(model=MODEL, messages=messages, stream=True)  # type: ignore[arg-type]
    assert [m.id for m in client.models.list()] == [MODEL]


def test_judge_grades_the_student_by_intent_and_urgency(client: openai.OpenAI) -> None:
    ticket = "I was charged twice for order #123456, $42.10 each time."
    teacher = '{"intent": "double_charge", "urgency": "high", "summary": "Charged twice"}'
    students = {
        "same": teacher,
        "fenced": f"```json\n{teacher}\n```",
        "urgency": '{"intent": "double_charge", "urgency": "low"}',
        "intent": '{"intent": "refund_status", "urgency": "high"}',
        "broken": '{"intent": "dou',
    }
    grades = {}
    for name, student in students.items():
        res = client.chat.completions.create(
            model=MODEL, messages=judge_messages("triage tickets", ticket, teacher, student), **JUDGE_PARAMS
        )  # type: ignore[arg-type]
        grades[name] = parse_grade(res.choices[0].message.content)
    assert grades == {"same": 1.0, "fenced": 1.0, "urgency": 0.5, "intent": 0.25, "broken": 0.0}


def test_synthetic_inputs_for_a_slice_are_new_distinct_and_of_the_slice(
    base_url: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    src = tmp_path / "security.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows if r["metadata"]["product_area"] == "security"))
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        import_file(ws, src)
        save_teacher(ws, TeacherConfig("offline", base_url, MODEL, "", terms_ack=True,
                                       price_in_per_m=0.15, price_out_per_m=0.6))  # fmt: skip
        before = {p for (p,) in ws.query("SELECT prompt FROM records")}
        res = synth_inputs(ws, "offline", "security", 12)
        new = [p for (p,) in ws.query("SELECT prompt FROM records WHERE origin = 'synthetic'")]
    assert res.n_inserted == 12 and res.n_requests == 1 and res.cost_usd > 0
    assert len(set(new)) == 12 and not set(new) & before
    assert all(match(p).sure and match(p).template.slice == "security" for p in new)


def _distill(*args: str, bare_env: bool = False) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT)} if bare_env else {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "distill", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_demo_registers_the_offline_teacher_and_the_loop_runs_without_a_key(tmp_path: Path) -> None:
    ws_path = tmp_path / "demo.duckdb"
    artifacts = tmp_path / "demo.artifacts"
    try:
        skip = _distill("demo", "--no-open", "--no-teacher", "-w", str(ws_path))
        assert (
            skip.returncode == 0
            and "offline teacher" not in skip.stderr
            and not artifacts.joinpath(process.STATE_NAME).exists()
        )
        out = _distill("demo", "--no-open", "-w", str(ws_path), bare_env=True)  # no key, no $HOME needed
        assert out.returncode == 0, out.stderr
        running = process.running(artifacts)
        assert running is not None and f"at {running.base_url}" in out.stderr
        shown = json.loads(_distill("teachers", "show", "offline", "-w", str(ws_path), "--json").stdout)
        assert shown["base_url"] == running.base_url and shown["terms_ack"] and shown["price_out_per_m"] > 0
        assert shown["api_key_env"] == "" and shown["api_key_set"]

        gen = _distill("generate", "offline", "--all", "--limit", "20", "-w", str(ws_path), "--json")
        assert gen.returncode == 0, gen.stderr
        doc = json.loads(gen.stdout)
        assert (doc["done"], doc["failed"], doc["status"]) == (20, 0, "done") and doc["cost_usd"] > 0
        syn = _distill("synth", "run", "offline", "--slice", "security", "-n", "10", "-w", str(ws_path), "--json")
        assert syn.returncode == 0, syn.stderr
        assert json.loads(syn.stdout)["result"]["n_inserted"] == 10
        ans = _distill("generate", "offline", "-w", str(ws_path), "--json")  # answers the 10 new inputs
        assert json.loads(ans.stdout)["done"] == 10
        with Workspace.open(ws_path) as ws:
            costs = ws.query("SELECT kind, count(*), sum(cost_usd) FROM teacher_ledger GROUP BY kind ORDER BY kind")
            intents = [json.loads(r)["intent"] for (r,) in ws.query(
                "SELECT response FROM records WHERE origin = 'synthetic'")]  # fmt: skip
        assert [(k, n) for k, n, _ in costs] == [("generate", 30), ("synth", 1)] and all(c > 0 for *_, c in costs)
        assert sum(i in ("account_takeover", "phishing_report") for i in intents) >= 8

        again = _distill("demo", "--no-open", "-w", str(ws_path))  # one answering is reused
        assert again.returncode == 0 and process.running(artifacts) == running

        stop = _distill("demo", "--stop-teacher", "-w", str(ws_path))
        assert stop.returncode == 0 and f"pid {running.pid}" in stop.stderr
        assert process.running(artifacts) is None and process.health(running.port) is None
        assert not (artifacts / process.STATE_NAME).exists()
        restarted = _distill("demo", "--no-open", "-w", str(ws_path))  # starts it again, the teacher follows
        assert restarted.returncode == 0, restarted.stderr
        now = process.running(artifacts)
        assert now is not None and now.pid != running.pid
        shown = json.loads(_distill("teachers", "show", "offline", "-w", str(ws_path), "--json").stdout)
        assert shown["base_url"] == now.base_url
    finally:
        process.stop(artifacts)


def test_a_stale_state_file_is_not_trusted(tmp_path: Path) -> None:
    artifacts = tmp_path / "ws.artifacts"
    artifacts.mkdir()
    state = artifacts / process.STATE_NAME
    state.write_text(json.dumps({"pid": os.getpid(), "port": 9, "base_url": "http://127.0.0.1:9/v1", "model": MODEL}))
    assert process.running(artifacts) is None
    assert process.stop(artifacts) is None and not state.exists()  # never signals the pid a stale file names
