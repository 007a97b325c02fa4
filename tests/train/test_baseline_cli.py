"""`distill baseline` (run, list, export) against the fake teacher server, `distill bar show` with the payback
estimate, `distill checklist`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trainfix import fake_teacher_workspace

from distill.cli import main
from tests.teacher.fake_openai import FakeOpenAI


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_baseline_commands(tmp_path: Path, fake_server: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    ws_path = str(tmp_path / "ws.duckdb")
    fake_teacher_workspace(Path(ws_path), fake_server.base_url).close()
    code, out, _ = cli(capsys, "baseline", "--no-zero-shot", "--no-few-shot", "--model", "cheap", "-w", ws_path)
    assert code == 0
    assert "model:cheap" in out.splitlines()[1] and "billing" in out
    assert out.rstrip().endswith("the cheapest outcome: model:cheap already meets the bar; training may not be needed")
    code, out, _ = cli(capsys, "baseline", "list", "--json", "-w", ws_path)
    (row,) = json.loads(out)
    assert row["name"] == "model:cheap" and row["passed"] is True
    code, out, _ = cli(capsys, "baseline", "export", "model:cheap", "-o", str(tmp_path / "p.jsonl"), "-w", ws_path)
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert code == 0 and len(lines) == row["n_items"] and json.loads(lines[0])["messages"][0]["role"] == "system"
    code, _, err = cli(capsys, "baseline", "export", "few-shot-k4", "-o", str(tmp_path / "x.json"), "-w", ws_path)
    assert code == 1 and "no baseline prompt named 'few-shot-k4'; known: model:cheap" in err
    code, _, err = cli(capsys, "baseline", "--k", "2,x", "-w", ws_path)
    assert code == 1 and "Few-shot k (--k): cannot read 'x'" in err

    # The bar shows the payback once the machine price and the traffic are known.
    code, out, _ = cli(capsys, "bar", "show", "-w", ws_path)
    assert "payback: not estimated" in out and "  - set the student machine's price per hour" in out
    code, out, _ = cli(capsys, "bar", "set", "--requests-per-day", "2000", "--teacher-price", "5", "--student-price",
                       "1.5", "--json", "-w", ws_path)  # fmt: skip
    assert json.loads(out)["requests_per_day"] == 2000
    code, out, _ = cli(capsys, "bar", "show", "--json", "-w", ws_path)
    # No evaluation of the local student has measured its throughput yet (a model baseline is billed per request).
    assert "no evaluation has measured the student's throughput" in " ".join(json.loads(out)["payback"]["missing"])

    code, out, _ = cli(capsys, "checklist", "--json", "-w", ws_path)
    items = {i["key"]: i for i in json.loads(out)}
    assert items["baselines_run"]["state"] == "ok" and "model:cheap already meets the bar" in \
        items["baselines_run"]["detail"]  # fmt: skip
    assert items["bar_set"]["state"] == "ok" and items["serving"]["detail"] == "not started"
    code, out, _ = cli(capsys, "checklist", "-w", ws_path)
    assert code == 0 and "[x] quality bar set" in out and "-> distill bar set --slice-bar SLICE=X" in out
