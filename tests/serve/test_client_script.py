"""``scripts/serve_client.py`` against a real gateway: it steers the live mode through shadow, canary and student
and sends the sample's tickets with their slices and user ids through the openai client."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from curation.workspace import Workspace
from tests.serve.conftest import read_lines

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "serve_client.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("serve_client", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_client_drives_the_three_modes(gateway, sws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    client = load_script()
    args = ["-w", str(sws.path), "--modes", "shadow,canary:0.5,student", "-n", "2", "--users", "2"]
    with gateway(mode="shadow"):
        rc = client.main([*args, "--concurrency", "1", "--max-tokens", "4"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0, out
    assert [ln.split(":")[0] for ln in out] == ["mode shadow", "mode canary, share 0.5", "mode student"]
    shadow, student = out[0], out[2]
    assert "2 requests from 2 users: the student answered 0, the teacher 2; 0 errors" in shadow  # users get the teacher
    assert "the student answered 2, the teacher 0; 0 errors" in student  # threshold 0: the student keeps every answer
    lines = read_lines(sws)
    assert Counter(ln["metadata"]["serve"]["mode"] for ln in lines) == {"shadow": 2, "canary": 2, "student": 2}
    tickets = client.tickets(6)
    assert [ln["metadata"]["slice"] for ln in lines] == [s for s, _ in tickets]  # the sample's slices, in order
    assert len({ln["metadata"]["serve"]["key_hash"] for ln in lines}) == 2  # two users
    assert {ln["metadata"]["serve"]["key_from"] for ln in lines} == {"header"}


def test_a_drifted_stream_moves_every_ticket_to_another_slice() -> None:
    client = load_script()
    pool = client.tickets(200)
    moved = client.drifted(pool)
    assert [m for _, m in moved] == [m for _, m in pool]
    assert all(a != b for (a, _), (b, _) in zip(pool, moved, strict=True))
    assert {s for s, _ in moved} == {s for s, _ in pool}


def test_bad_modes_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    client = load_script()
    assert client.main(["-w", str(tmp_path / "w.duckdb"), "--modes", "canary:lots"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: --modes: 'canary:lots': the share after ':' is a number, e.g. canary:0.25"
    )
