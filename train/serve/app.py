"""The gateway's HTTP side (FastAPI): OpenAI's chat completions and models, health, metrics and the admin endpoint.

``POST /v1/chat/completions`` (JSON or, with ``stream``, server-sent chunks: the fallback decision needs the whole
student answer, so chunks are sent once the answer is chosen and logged), ``GET /v1/models``, ``GET /healthz``,
``GET /metrics`` (Prometheus text), ``GET|POST /admin/live`` (mode, share, thresholds; from a loopback address with
the state file's bearer token only).
"""

from __future__ import annotations

import hmac
import json
import os
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from curation.errors import UserError
from train.serve import openai_format as fmt
from train.serve.control import ADMIN_PATH
from train.serve.gateway import Gateway
from train.serve.routing import Live
from train.serve.settings import STUDENT_ONLY_SUFFIX, Thresholds

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def live_doc(live: Live) -> dict[str, Any]:
    return {"mode": live.mode, "share": live.share, "thresholds": live.thresholds.to_dict()}


def make_app(gw: Gateway, admin_token: str) -> FastAPI:
    """The app for one gateway; ``admin_token`` guards ``/admin/live``."""
    app = FastAPI(title="distill serve", docs_url=None, redoc_url=None, openapi_url=None)
    started = int(time.time())
    name = gw.cfg.served_model

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(fmt.error_body("the request body is not valid JSON"), status_code=400)
        out = await gw.handle(body, request.headers)
        if out.status != 200 or out.request is None or not out.request.stream:
            return JSONResponse(out.doc, status_code=out.status)
        chunks = fmt.chunks(out.doc, with_logprobs=out.request.logprobs, include_usage=out.request.include_usage)
        return StreamingResponse(fmt.sse(chunks), media_type="text/event-stream")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": started, "owned_by": "distill"}
                for m in (name, name + STUDENT_ONLY_SUFFIX)]  # fmt: skip
        return {"object": "list", "data": data}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid(), "model": name, **live_doc(gw.router.live)}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gw.metrics.render(), media_type=gw.metrics.content_type)

    def _refused(request: Request) -> JSONResponse | None:
        host = request.client.host if request.client else ""
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if host not in LOOPBACK or not hmac.compare_digest(given.encode(), admin_token.encode()):
            return JSONResponse(fmt.error_body("admin calls need the token from the state file, from this machine",
                                               "authentication_error"), status_code=401)  # fmt: skip
        return None

    @app.get(ADMIN_PATH)
    async def get_live(request: Request) -> Response:
        return _refused(request) or JSONResponse(live_doc(gw.router.live))

    @app.post(ADMIN_PATH)
    async def set_live(request: Request) -> Response:
        if (refused := _refused(request)) is not None:
            return refused
        try:
            doc = json.loads(await request.body())
            if not isinstance(doc, dict):
                raise UserError("the body must be a JSON object")
            cur = gw.router.live
            thresholds = None
            if doc.get("thresholds") is not None:
                thresholds = Thresholds.from_json(doc["thresholds"], "thresholds", cur.thresholds)
            new = gw.router.update(doc.get("mode"), doc.get("share"), thresholds)
        except (ValueError, UserError) as exc:
            return JSONResponse(fmt.error_body(str(exc)), status_code=400)
        return JSONResponse(live_doc(new))

    return app
