"""Fixtures for the gateway tests: a tiny student with a LoRA adapter, the fake teacher, a workspace, a server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from curation.teacher.config import save_teacher
from curation.workspace import Workspace
from tests.teacher.conftest import KEY, KEY_ENV, teacher_cfg
from tests.teacher.fake_openai import FakeOpenAI
from tests.train.trainfix import build_tiny_model
from train.serve.server import Running, start
from train.serve.settings import ServeConfig, StudentSpec, Thresholds


def build_adapter(base: Path, dest: Path) -> Path:
    """A LoRA adapter with random (non-zero) weights on the tiny model, saved with its tokenizer: serving it
    changes the answers, so a test can tell the adapter was applied."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(dest)
    AutoTokenizer.from_pretrained(base).save_pretrained(dest)
    return dest


@pytest.fixture(scope="session")
def student_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base model folder, adapter folder)."""
    base = build_tiny_model(tmp_path_factory.mktemp("tiny-base"))
    return base, build_adapter(base, tmp_path_factory.mktemp("tiny-adapter"))


@pytest.fixture
def teacher_srv() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI(api_key=KEY)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def sws(tmp_path: Path, teacher_srv: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace with teacher 'big' aimed at the fake server (its key in the environment)."""
    monkeypatch.setenv(KEY_ENV, KEY)
    ws = Workspace.open(tmp_path / "ws.duckdb")
    save_teacher(ws, teacher_cfg(teacher_srv.base_url))
    yield ws
    ws.close()


def serve_config(**kw: Any) -> ServeConfig:
    """A gateway on any free port with teacher 'big', no bar, and (unless given) threshold 0: every student
    answer passes the confidence check (a random tiny model is never sure of anything)."""
    values: dict[str, Any] = {"teacher": "big", "port": 0, "bar": None, "thresholds": Thresholds(default=0.0),
                              "batch_wait_ms": 5.0}  # fmt: skip
    values.update(kw)
    return ServeConfig(**values)


@pytest.fixture
def gateway(sws: Workspace, student_dirs: tuple[Path, Path]) -> Iterator[Callable[..., Any]]:
    """``with gateway(mode=...) as g:`` a server on a thread, stopped on the way out."""
    running: list[Running] = []

    @contextmanager
    def run(spec: StudentSpec | None = None, **kw: Any) -> Iterator[Running]:
        base, adapter = student_dirs
        spec = spec or StudentSpec(base_model=str(base), adapter=str(adapter), device="cpu")
        g = start(sws, serve_config(**kw), spec)
        running.append(g)
        try:
            yield g
        finally:
            running.remove(g)
            g.stop()

    yield run
    for g in running:
        g.stop()


def client(g: Running) -> Any:
    import openai

    return openai.OpenAI(base_url=g.base_url, api_key="unused", max_retries=0, timeout=60)


def read_lines(ws: Workspace) -> list[dict[str, Any]]:
    """Every line of the gateway's logs, oldest first."""
    import json

    from train.serve.logwriter import log_files
    from train.serve.settings import logs_dir

    return [json.loads(ln) for p in log_files(logs_dir(ws.artifacts_dir)) for ln in p.read_text().splitlines()]


MESSAGES = [{"role": "system", "content": "Triage the ticket. Answer JSON {intent, urgency, summary}."},
            {"role": "user", "content": "I want a refund for the double charge"}]  # fmt: skip


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Teacher retries wait milliseconds here (the schedule is tested with the request path)."""
    import curation.teacher.client as teacher_client

    monkeypatch.setattr(teacher_client, "BACKOFF_BASE_S", 0.005)


ROOT = Path(__file__).resolve().parents[2]


def spawn_server(ws_path: Path, *args: str, timeout_s: float = 120.0) -> tuple[Any, dict[str, Any]]:
    """``distill serve ARGS`` in a subprocess on a free port; (process, its state file) once it answers."""
    import json
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from curation.workspace import artifacts_dir_for
    from train.serve.settings import state_path

    env = {**os.environ, "PYTHONPATH": str(ROOT), KEY_ENV: KEY, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(ws_path.with_suffix(".serve.log"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "distill", "serve", *args, "-w", str(ws_path), "--port", "0"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=ROOT)  # fmt: skip
    log.close()
    path = state_path(artifacts_dir_for(ws_path))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"distill serve exited: {ws_path.with_suffix('.serve.log').read_text()[-2000:]}")
        try:
            state = json.loads(path.read_text())
            if state["pid"] == proc.pid:
                urllib.request.urlopen(f"http://127.0.0.1:{state['port']}/healthz", timeout=2).read()
                return proc, state
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("distill serve did not start in time")
