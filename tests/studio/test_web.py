"""`distill studio --web`: textual-serve serves the studio; a browser session (a websocket) gets a running studio."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.studio.conftest import build_workspace

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")
pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_index(port: int, proc: subprocess.Popen[bytes], limit_s: float = 90) -> str:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the server did not answer")


async def _session_screen(port: int) -> bytes:
    """Open a browser's websocket and read what the session's studio draws until its title shows."""
    async with aiohttp.ClientSession() as s, s.ws_connect(f"http://127.0.0.1:{port}/ws?width=160&height=48") as ws:
        await ws.send_json(["resize", {"width": 160, "height": 48}])
        seen = b""
        while b"Distill Studio" not in seen:
            msg = await asyncio.wait_for(ws.receive(), 90)
            if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                raise AssertionError(f"the session ended: {msg.type}")
            seen += msg.data if isinstance(msg.data, bytes) else msg.data.encode()
        return seen


def test_web_serves_a_studio_session(tmp_path) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=6)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DISTILL_REVIEWER": "web"}
    proc = subprocess.Popen([sys.executable, "-m", "distill", "studio", "--web", "--port", str(port), str(path)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    try:
        index = _wait_for_index(port, proc)
        assert f"ws://127.0.0.1:{port}/ws" in index
        screen = asyncio.run(_session_screen(port))
        assert b"Distill Studio" in screen
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the session it started
        proc.wait(timeout=30)


def test_web_refuses_a_missing_workspace(tmp_path, capsys) -> None:
    from distill.cli import main

    assert main(["studio", "--web", str(tmp_path / "nope.duckdb")]) == 1
    assert "no workspace at" in capsys.readouterr().err
