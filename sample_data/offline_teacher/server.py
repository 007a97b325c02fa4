"""The offline teacher's HTTP side: an OpenAI-compatible FastAPI app served by uvicorn on 127.0.0.1.

``POST /v1/chat/completions`` (non-streaming), ``GET /v1/models``, ``GET /healthz``. Any API key is accepted (the
server is local and answers from templates). Errors have OpenAI's shape ``{"error": {"message", "type", ...}}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sample_data.offline_teacher.answers import completion

MODEL = "offline-triage-1"
DEFAULT_LATENCY_MS = 20.0
MAX_N = 16


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


def _invalid(body: Any, model: str) -> JSONResponse | None:
    """An error response for a body this server cannot answer, or None."""
    if not isinstance(body, dict):
        return _error(400, "the request body must be a JSON object")
    if body.get("model") != model:
        return _error(404, f"The model `{body.get('model')}` does not exist; this server serves {model}",
                      "model_not_found")  # fmt: skip
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return _error(400, "messages must be a non-empty list of message objects")
    if body.get("stream"):
        return _error(400, "streaming is not supported by the offline teacher; send stream=false")
    try:
        n = int(body.get("n") or 1)
        top = int(body.get("top_logprobs") or 0)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        limit = None if limit is None else int(limit)
        float(body.get("temperature") or 0.0)
    except (TypeError, ValueError):
        return _error(400, "n, top_logprobs, max_tokens and temperature must be numbers")
    if not 1 <= n <= MAX_N or not 0 <= top <= 20 or (limit is not None and limit < 1):
        return _error(400, f"n must be 1-{MAX_N}, top_logprobs 0-20, max_tokens >= 1")
    return None


def make_app(model: str = MODEL, latency_ms: float = DEFAULT_LATENCY_MS) -> FastAPI:
    """The app: answers after ``latency_ms`` (a provider is never instant; tests pass 0)."""
    app = FastAPI(title="Distill Studio offline sample teacher", docs_url=None, redoc_url=None, openapi_url=None)
    started = int(time.time())

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the request body is not valid JSON")
        bad = _invalid(body, model)
        if bad is not None:
            return bad
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000)
        return JSONResponse(completion(body, model, int(time.time())))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model, "object": "model", "created": started,
                                            "owned_by": "distill-sample"}]}  # fmt: skip

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": model, "pid": os.getpid()}

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0 = any free port); OSError if the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name != "nt":  # a restart may rebind at once past the old socket's TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(
    port: int,
    *,
    host: str = "127.0.0.1",
    latency_ms: float = DEFAULT_LATENCY_MS,
    model: str = MODEL,
    state_file: Path | None = None,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM. With ``state_file``, write ``{pid, port, base_url, model}``
    there once listening (atomically) and remove it on the way out if it is still this process's."""
    import uvicorn  # only when serving: the answer logic is importable without it

    sock = bind(host, port)
    actual = sock.getsockname()[1]
    base_url = f"http://{host}:{actual}/v1"
    config = uvicorn.Config(make_app(model, latency_ms), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_name(state_file.name + ".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "port": actual, "base_url": base_url, "model": model}))
        os.replace(tmp, state_file)
    print(f"offline teacher {model} at {base_url} (pid {os.getpid()})", flush=True)
    # uvicorn shuts down gracefully on SIGTERM and then raises the signal again under the handler it found: make
    # that handler exit through Python, so the state file below is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if state_file is not None:
            try:
                if json.loads(state_file.read_text()).get("pid") == os.getpid():
                    state_file.unlink()
            except (OSError, ValueError):
                pass
