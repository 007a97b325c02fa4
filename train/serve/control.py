"""Finding and steering a running gateway: its state file and the admin endpoint's client.

The server writes ``<artifacts>/serve/state.json`` (pid, port, base URL, served model, run, and a random admin
token) with 0600 permissions once it listens, and removes it on the way out. ``distill serve control`` reads it
and calls ``/admin/live`` on 127.0.0.1 with the token; it never opens the workspace (the server holds it).
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from curation.errors import UserError
from train.serve.settings import state_path

ADMIN_PATH = "/admin/live"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_state(artifacts_dir: Path, state: dict[str, Any]) -> Path:
    """Write the state file atomically, readable by its owner only (it holds the admin token)."""
    path = state_path(artifacts_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)
    return path


def remove_state(artifacts_dir: Path, pid: int) -> None:
    """Remove the state file if it is still this process's."""
    path = state_path(artifacts_dir)
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def read_state(artifacts_dir: Path) -> dict[str, Any]:
    """The running gateway's state, checked: its ``/healthz`` answers with the same pid. ``UserError`` if none."""
    path = state_path(artifacts_dir)
    try:
        state = json.loads(path.read_text())
        port, pid = int(state["port"]), int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"no running `distill serve` for this workspace ({path} is missing or unreadable)") from None
    try:
        health = _call(f"http://127.0.0.1:{port}/healthz", None, None, timeout=3.0)
    except UserError:
        health = {}
    if health.get("pid") != pid:
        raise UserError(f"the gateway named in {path} (pid {pid}, port {port}) is not answering; is it running?")
    return state


def live(artifacts_dir: Path, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The gateway's live settings (mode, share, thresholds), after applying ``changes`` when given."""
    state = read_state(artifacts_dir)
    url = f"http://127.0.0.1:{int(state['port'])}{ADMIN_PATH}"
    return _call(url, state["token"], changes)


def _call(url: str, token: str | None, body: dict[str, Any] | None, timeout: float = 10.0) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        try:
            msg = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            msg = exc.reason
        raise UserError(f"the gateway refused: {msg}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot reach the gateway at {url}: {exc}") from None
