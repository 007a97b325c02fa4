"""The gateway's modes and fallback over real HTTP with the openai client: shadow, canary, student."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from curation.workspace import Workspace
from tests.serve.conftest import MESSAGES, client, read_lines
from tests.teacher.fake_openai import FakeOpenAI, triage_answer
from train.bars import QualityBar, set_bar
from train.serve.settings import Thresholds

TEACHER_TEXT = triage_answer(MESSAGES[-1]["content"])


def test_shadow_answers_with_the_teacher_and_logs_both(gateway, sws: Workspace, teacher_srv: FakeOpenAI) -> None:
    with gateway(mode="shadow") as g:
        r = client(g).chat.completions.create(model="distill-student", messages=MESSAGES, max_tokens=6,
                                              extra_headers={"X-Slice": "billing"})  # fmt: skip
    assert r.choices[0].message.content == TEACHER_TEXT
    assert r.model == teacher_srv.served_model
    [line] = read_lines(sws)
    s = line["metadata"]["serve"]
    assert (s["route"], s["mode"], s["slice"], s["fallback_reason"]) == ("both", "shadow", "billing", None)
    assert s["teacher"]["text"] == TEACHER_TEXT and s["teacher"]["error"] is None
    assert s["student"]["text"] is not None and s["student"]["error"] is None
    assert s["student"]["model"] == "distill-student" and 0 < s["student"]["confidence"] <= 1
    assert s["confidence"] == s["student"]["confidence"]
    assert line["metadata"]["slice"] == "billing"
    assert line["response"]["id"] == r.id == s["request_id"]
    assert line["request"]["messages"] == MESSAGES
    # the teacher request went through the one request path: a ledger row of kind serve
    sws_rows = sws.query("SELECT kind, status FROM teacher_ledger")
    assert sws_rows == [("serve", "ok")]


def test_student_mode_answers_from_the_student(gateway, sws: Workspace) -> None:
    with gateway(mode="student") as g:
        r = client(g).chat.completions.create(model="distill-student", messages=MESSAGES, max_tokens=5,
                                              logprobs=True, top_logprobs=2, metadata={"slice": "billing"})  # fmt: skip
    text = r.choices[0].message.content
    assert r.model == "distill-student" and text != TEACHER_TEXT
    content = r.choices[0].logprobs.content
    assert 1 <= len(content) <= 5 and all(len(t.top_logprobs) == 2 for t in content)
    assert r.usage.completion_tokens == len(content) and r.usage.prompt_tokens > 0
    [line] = read_lines(sws)
    s = line["metadata"]["serve"]
    assert (s["route"], s["mode"], s["slice"], s["fallback_reason"], s["teacher"]) == (
        "student", "student", "billing", None, None)  # fmt: skip
    assert s["student"]["text"] == text
    assert sws.scalar("SELECT count(*) FROM teacher_ledger") == 0


def test_low_confidence_falls_back_to_the_teacher_per_slice(gateway, sws: Workspace) -> None:
    # the tiny random student is never sure: a threshold of 0.5 sends it back, the slice at 0 keeps it
    th = Thresholds(default=0.5, slices={"accounts": 0.0})
    with gateway(mode="student", thresholds=th) as g:
        c = client(g)
        low = c.chat.completions.create(
            model="m", messages=MESSAGES, max_tokens=4, extra_headers={"X-Slice": "billing"}
        )
        kept = c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=4,
                                         extra_headers={"X-Slice": "accounts"})  # fmt: skip
    assert low.choices[0].message.content == TEACHER_TEXT
    assert kept.choices[0].message.content != TEACHER_TEXT
    a, b = (ln["metadata"]["serve"] for ln in read_lines(sws))
    assert (a["route"], a["fallback_reason"], a["slice"]) == ("teacher", "low_confidence", "billing")
    assert a["student"]["fallback_check"] == "low_confidence" and a["confidence"] < 0.5
    assert a["teacher"]["text"] == TEACHER_TEXT
    assert (b["route"], b["fallback_reason"]) == ("student", None)


def test_a_failing_verifier_of_the_bar_falls_back(gateway, sws: Workspace) -> None:
    set_bar(sws, QualityBar(task="triage", metrics=[{"kind": "valid_json"}], threshold=0.8))
    with gateway(mode="student", bar="default") as g:
        r = client(g).chat.completions.create(model="m", messages=MESSAGES, max_tokens=4)
    assert r.choices[0].message.content == TEACHER_TEXT  # a random student never writes JSON
    [line] = read_lines(sws)
    assert line["metadata"]["serve"]["fallback_reason"] == "verifier:valid_json"
    assert line["metadata"]["serve"]["route"] == "teacher"


def test_canary_is_sticky_per_key_and_splits_about_the_share(gateway, sws: Workspace) -> None:
    with gateway(mode="canary", share=0.25) as g:
        c = client(g)
        routes: dict[str, set[str]] = {}
        for i in range(120):
            user = f"user-{i % 60}"  # every user twice, with different tickets
            msgs = [MESSAGES[0], {"role": "user", "content": f"ticket {i}: refund please"}]
            r = c.chat.completions.create(model="m", messages=msgs, max_tokens=2, extra_headers={"X-User-Id": user})
            routes.setdefault(user, set()).add(r.model)
    assert all(len(models) == 1 for models in routes.values())  # one user sees one model
    lines = read_lines(sws)
    by_route = Counter(ln["metadata"]["serve"]["route"] for ln in lines)
    assert set(by_route) == {"student", "teacher"}
    assert 0.1 <= by_route["student"] / len(lines) <= 0.45
    assert all(ln["metadata"]["serve"]["key_from"] == "header" for ln in lines)
    assert "user-1" not in json.dumps(lines)  # only the key's hash is logged


def test_teacher_errors_are_served_by_the_student(gateway, sws: Workspace, teacher_srv: FakeOpenAI) -> None:
    teacher_srv.default_plan = [{"kind": "500"}] * 10  # every attempt fails
    with gateway(mode="shadow") as g:
        r = client(g).chat.completions.create(model="m", messages=MESSAGES, max_tokens=3)
    assert r.model == "distill-student"
    [line] = read_lines(sws)
    s = line["metadata"]["serve"]
    assert (s["route"], s["fallback_reason"]) == ("student", "teacher_error")
    assert "HTTP 500" in s["teacher"]["error"]


def test_a_remote_student_server(gateway, sws: Workspace, teacher_srv: FakeOpenAI) -> None:
    """--student-url: any OpenAI-compatible server holding the student (here the fake server stands in for vLLM)."""
    from tests.teacher.conftest import KEY_ENV
    from train.serve.settings import StudentSpec

    spec = StudentSpec(url=teacher_srv.base_url, model="triage-teacher-2026-01-01", key_env=KEY_ENV)
    with gateway(spec=spec, mode="student", thresholds=Thresholds(default=0.01)) as g:
        r = client(g).chat.completions.create(model="m", messages=MESSAGES, logprobs=True, top_logprobs=2)
    assert r.choices[0].message.content == TEACHER_TEXT and len(r.choices[0].logprobs.content[0].top_logprobs) == 2
    [line] = read_lines(sws)
    s = line["metadata"]["serve"]
    assert (s["route"], s["fallback_reason"], s["student"]["model"]) == ("student", None, teacher_srv.served_model)
    lps = [t.logprob for t in r.choices[0].logprobs.content]
    assert s["confidence"] == pytest.approx(math.exp(sum(lps) / len(lps)))
    assert sum(teacher_srv.attempts.values()) == 1  # no teacher here: the one request was the student's


def test_an_unreachable_teacher_is_retried_after_a_pause(gateway, sws: Workspace, teacher_srv: FakeOpenAI) -> None:
    port = int(teacher_srv.base_url.rsplit(":", 1)[1].split("/")[0])
    teacher_srv.stop()  # nothing listens: the session stops sending after its retries
    with gateway(mode="shadow", teacher_retry_s=0.5) as g:
        c = client(g)
        down = [c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=2).model for _ in range(2)]
        back = FakeOpenAI(api_key=teacher_srv.api_key)
        back.start(port)
        try:
            import time

            time.sleep(0.6)  # the pause (from the second request) is over: the next request tries the teacher
            up = c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=2).model
        finally:
            back.stop()
    assert down == ["distill-student", "distill-student"] and up == back.served_model
    reasons = [ln["metadata"]["serve"]["fallback_reason"] for ln in read_lines(sws)]
    assert reasons[:2] == ["teacher_error", "teacher_error"] and reasons[-1] is None
    assert "cannot connect" in read_lines(sws)[0]["metadata"]["serve"]["teacher"]["error"]
