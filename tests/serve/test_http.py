"""The gateway's HTTP surface: streaming, models, health, Prometheus metrics, bad requests, live control."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from curation.workspace import Workspace
from distill.cli import main
from tests.serve.conftest import MESSAGES, client, read_lines
from tests.teacher.fake_openai import triage_answer
from train.serve.control import ADMIN_PATH
from train.serve.settings import state_path

TEACHER_TEXT = triage_answer(MESSAGES[-1]["content"])


def test_streaming_matches_the_answer_and_its_logprobs(gateway, sws: Workspace) -> None:
    with gateway(mode="student") as g:
        c = client(g)
        stream = c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=6, stream=True, logprobs=True,
                                           top_logprobs=1, stream_options={"include_usage": True})  # fmt: skip
        chunks = list(stream)
        whole = c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=6, logprobs=True, top_logprobs=1)
        teacher_stream = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                                        extra_headers={"X-Slice": "x"}))  # fmt: skip
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole.choices[0].message.content  # greedy: the same answer streamed or not
    lps = [t.logprob for ch in chunks if ch.choices and ch.choices[0].logprobs for t in ch.choices[0].logprobs.content]
    assert lps == [t.logprob for t in whole.choices[0].logprobs.content]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert len({ch.id for ch in chunks}) == 1
    # the streamed request is logged as the completion it amounts to
    lines = read_lines(sws)
    assert lines[0]["response"]["choices"][0]["message"]["content"] == text
    assert lines[0]["request"]["stream"] is True
    assert "".join(ch.choices[0].delta.content or "" for ch in teacher_stream if ch.choices) != ""


def test_models_health_metrics_and_bad_requests(gateway, sws: Workspace) -> None:
    with gateway(mode="student", served_model="triage-small") as g:
        c = client(g)
        assert [m.id for m in c.models.list().data] == ["triage-small", "triage-small:student"]
        health = json.loads(urllib.request.urlopen(g.base_url.removesuffix("/v1") + "/healthz").read())
        assert health["status"] == "ok" and health["pid"] == os.getpid() and health["mode"] == "student"
        for i in range(3):
            c.chat.completions.create(
                model="m", messages=MESSAGES, max_tokens=2, extra_headers={"X-Slice": f"s{i % 2}"}
            )
        import openai

        with pytest.raises(openai.BadRequestError, match="temperature"):
            c.chat.completions.create(model="m", messages=MESSAGES, temperature=7)
        with pytest.raises(openai.BadRequestError, match="messages"):
            c.chat.completions.create(model="m", messages=[])
        text = urllib.request.urlopen(g.base_url.removesuffix("/v1") + "/metrics").read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    reqs = {(s.labels["route"], s.labels["slice"]): s.value for s in fams["distill_serve_requests"].samples
            if s.name.endswith("_total")}  # fmt: skip
    assert reqs == {("student", "s0"): 2.0, ("student", "s1"): 1.0}
    batch = {s.name: s.value for s in fams["distill_serve_batch_size"].samples}
    assert batch["distill_serve_batch_size_count"] == 3
    conf = {s.name: s.value for s in fams["distill_serve_student_confidence"].samples}
    assert conf["distill_serve_student_confidence_count"] == 3
    lat = [s for s in fams["distill_serve_latency_seconds"].samples if s.name.endswith("_count")]
    assert [(s.labels["route"], s.value) for s in lat] == [("student", 3.0)]
    errs = {s.labels["kind"]: s.value for s in fams["distill_serve_errors"].samples if s.name.endswith("_total")}
    assert errs == {"bad_request": 2.0}
    assert {s.name: s.value for s in fams["distill_serve_log_lines"].samples}["distill_serve_log_lines_total"] == 3
    assert len(read_lines(sws)) == 3  # bad requests reach no model and are not logged


def test_control_changes_the_mode_without_a_restart(gateway, sws: Workspace, capsys) -> None:
    w = ["-w", str(sws.path)]
    with gateway(mode="shadow") as g:
        c = client(g)
        first = c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=2)
        assert main(["serve", "control", *w, "--mode", "student", "--threshold", "0", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["mode"] == "student" and doc["thresholds"]["default"] == 0.0
        second = c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=2)
        assert main(["serve", "control", *w, "--mode", "canary", "--share", "1"]) == 0
        assert "mode canary  share 1" in capsys.readouterr().out
        third = c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=2)
        assert main(["serve", "control", *w, "--share", "2"]) == 1  # refused, nothing changed
        assert "between 0 and 1" in capsys.readouterr().err
        assert main(["serve", "control", *w, "--port", "9"]) == 1
        # the admin endpoint wants the state file's token
        st = state_path(sws.artifacts_dir)
        assert stat.S_IMODE(st.stat().st_mode) == 0o600
        req = urllib.request.Request(g.base_url.removesuffix("/v1") + ADMIN_PATH, data=b'{"mode": "shadow"}',
                                     method="POST", headers={"Authorization": "Bearer wrong"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req)
        assert err.value.code == 401
        assert g.gateway.router.live.mode == "canary"
    assert (first.model, second.model, third.model) == (
        "triage-teacher-2026-01-01",
        "distill-student",
        "distill-student",
    )
    modes = [ln["metadata"]["serve"]["mode"] for ln in read_lines(sws)]
    assert modes == ["shadow", "student", "canary"]
    assert not st.exists()  # removed on the way out
    assert main(["serve", "control", *w]) == 1
    assert "no running" in capsys.readouterr().err
