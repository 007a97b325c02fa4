from __future__ import annotations

import json

import pytest

from distill.cli import main


@pytest.fixture
def wpath(ws):
    p = str(ws.path)
    ws.close()
    return p


def run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    return rc, capsys.readouterr().out


def test_cli_curation_flow(wpath, capsys, tmp_path):
    w = ["-w", wpath]
    rc, out = run(capsys, "slices", *w, "--json")
    assert rc == 0 and {s["slice"] for s in json.loads(out)["slices"]} == {"billing", "login", "shipping", "security"}
    rc, out = run(capsys, "slices", "define", "lang", "--field", "metadata.lang", "--dry-run", *w)
    assert rc == 0 and "dry run" in out
    rc, out = run(capsys, "slices", "list", *w, "--json")
    assert json.loads(out) == []
    rc, out = run(capsys, "dedupe", "--exact", "--dry-run", *w, "--json")
    assert rc == 0 and json.loads(out)["run_id"] is None
    rc, out = run(capsys, "split", "make", "--share", "0.25", "--no-semantic", *w)
    assert rc == 0 and "frozen" in out
    rc, _ = run(capsys, "split", "check", "--no-semantic", *w)
    assert rc == 0
    rc, out = run(capsys, "filter", "lowconf", "--confidence", "min_logprob", "--min", "-0.5", "--policy", "review", *w)
    assert rc == 0 and "queued 3 for review" in out
    rc, out = run(capsys, "rebalance", "--to", "shares", "--shares", "billing=0.3,security=0.2", "--dry-run", *w)
    assert rc == 0 and "total variation" in out and "nothing written" in out
    rc, out = run(capsys, "rebalance", "--to", "production", "--name", "v1", *w, "--json")
    assert rc == 0 and json.loads(out)["version"]["name"] == "v1"
    rc, out = run(capsys, "oversample", "--from", "v1", "--factor", "security=2", "--name", "v2", *w)
    assert rc == 0 and "wrote dataset version v2" in out
    rc, out = run(capsys, "oversample", "--request", "security=10", "--dry-run", *w)
    assert "would queue" in out
    rc, out = run(capsys, "versions", *w, "--json")
    assert [v["name"] for v in json.loads(out)] == ["v2", "v1"] or {v["name"] for v in json.loads(out)} == {"v1", "v2"}
    rc, out = run(capsys, "export", "v2", "--out", str(tmp_path / "ex"), *w, "--json")
    files = json.loads(out)["files"]
    assert rc == 0 and set(files) == {"train", "heldout"}
    rc, out = run(capsys, "export", "v2", "--format", "training", "--out", str(tmp_path / "t.parquet"), *w)
    assert rc == 0 and (tmp_path / "t.parquet").exists()


def test_cli_user_errors_exit_1(wpath, capsys):
    assert main(["rebalance", "--to", "shares", "-w", wpath]) == 1
    assert main(["export", "nope", "-w", wpath]) == 1
    assert main(["filter", "x", "--verifier", "{bad", "-w", wpath]) == 1
    assert "error:" in capsys.readouterr().err
