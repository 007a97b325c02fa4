"""A real HTTP server on 127.0.0.1 that speaks enough of the OpenAI API for the teacher tests and benchmark.

Endpoints: POST /v1/chat/completions (logprobs + top_logprobs), POST /v1/files, GET /v1/files/{id}[/content],
POST /v1/batches, GET /v1/batches/{id}. Answers are derived from the prompt (a JSON triage answer, or a list of
new prompts for a synthetic-input request), so they are deterministic. Faults are scripted per content: the n-th
attempt at a given prompt takes the n-th entry of its plan (``429`` with Retry-After, ``500``, ``slow``, ``drop``,
``malformed``, ``leak`` = a 500 whose message echoes the Authorization header). Counters per content let tests
assert that nothing was asked again after it succeeded.

Run standalone (the benchmark does): ``python -m tests.teacher.fake_openai --latency 0.05`` prints the base URL,
answers ``stats`` on stdin and stops when stdin closes; ``--forever --port 8765`` serves until killed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INTENTS = ("refund", "login_issue", "shipping_delay", "cancel", "other")
KEYWORDS = {"refund": "refund", "charge": "refund", "password": "login_issue", "login": "login_issue",
            "package": "shipping_delay", "delivery": "shipping_delay", "cancel": "cancel"}  # fmt: skip
SYNTH_RE = re.compile(r"exactly (\d+) new")


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def content_of(body: dict[str, Any]) -> str:
    """The identity of a chat request for counting: its messages as canonical JSON."""
    return json.dumps(body.get("messages"), sort_keys=True)


def triage_answer(prompt: str) -> str:
    """A deterministic JSON triage answer for a ticket text."""
    low = prompt.lower()
    intent = next((v for k, v in KEYWORDS.items() if k in low), INTENTS[_h(prompt) % len(INTENTS)])
    urgency = "high" if ("urgent" in low or "asap" in low) else ("low", "medium")[_h(prompt + "u") % 2]
    summary = " ".join(prompt.split()[:6])
    return json.dumps({"intent": intent, "urgency": urgency, "summary": summary})


def synth_answer(messages: list[dict[str, Any]], n: int) -> str:
    """``{"prompts": [...]}``: variations of the examples, plus one verbatim example and one repeat (to dedupe)."""
    user = str(messages[-1].get("content") or "")
    examples = [ln[2:].strip() for ln in user.splitlines() if ln.startswith("- ")] or ["help me"]
    out = []
    for i in range(max(0, n - 2)):
        ex = examples[i % len(examples)]
        out.append(f"{ex.split(':')[0]} follow-up #{_h(user + str(i)) % 10000}: {ex.split(':')[-1].strip()} again")
    out.append(examples[0])  # already in the workspace
    if out:
        out.append(out[0].upper() + "  ")  # the same after normalisation
    return json.dumps({"prompts": out[:n] if n > 2 else out})


def tokens_with_logprobs(text: str, top: int) -> list[dict[str, Any]]:
    """Split ``text`` into tokens with deterministic logprobs and ``top`` alternatives."""
    toks = re.findall(r"\w+|[^\w\s]|\s+", text)
    out = []
    for i, t in enumerate(toks):
        lp = -(((_h(t + str(i)) % 1000) / 1000.0) ** 3) * 4
        alts = [{"token": t, "logprob": lp, "bytes": list(t.encode())}]
        alts += [{"token": f"{t}_{k}", "logprob": lp - 1.5 - k, "bytes": None} for k in range(1, top)]
        out.append({"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": alts[:top]})
    return out


def completion_body(body: dict[str, Any], served_model: str, planted: tuple[str, ...] = ()) -> dict[str, Any]:
    """A ChatCompletion for a request body; ``planted`` prompts are added to every synthetic-input answer."""
    messages = body.get("messages") or []
    last_user = next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    system = " ".join(str(m.get("content")) for m in messages if m.get("role") == "system")
    m = SYNTH_RE.search(system)
    text = triage_answer(last_user)
    if m:
        text = json.dumps({"prompts": [*json.loads(synth_answer(messages, int(m.group(1))))["prompts"], *planted]})
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if body.get("logprobs"):
        choice["logprobs"] = {"content": tokens_with_logprobs(text, int(body.get("top_logprobs") or 0) or 1)}
    pt = sum(len(str(x.get("content") or "").split()) + 3 for x in messages)
    ct = len(re.findall(r"\w+|[^\w\s]", text))
    return {
        "id": f"chatcmpl-{_h(content_of(body)):x}", "object": "chat.completion", "created": 1767225600,
        "model": served_model, "choices": [choice],
        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
    }  # fmt: skip


class FakeOpenAI:
    """The server and its script. ``start()`` returns the base URL (ends in /v1)."""

    def __init__(self, api_key: str = "sk-test-fake-0123456789abcdef", latency: float = 0.0) -> None:
        self.api_key = api_key
        self.latency = latency
        self.served_model = "triage-teacher-2026-01-01"
        self.planted: tuple[str, ...] = ()  # prompts added to every synthetic-input answer (a test plants leaks)
        self.plans: dict[str, list[dict[str, Any]]] = {}  # substring of the request -> faults by attempt
        self.default_plan: list[dict[str, Any]] = []  # faults for the first attempts at every content
        self.attempts: Counter[str] = Counter()  # every chat request per content
        self.successes: Counter[str] = Counter()  # 200 answers delivered per content
        self.late: Counter[str] = Counter()  # answers to scripted slow requests (sent after the client's timeout)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_polls_to_complete = 2
        self.batch_failed_custom_ids: set[str] = set()
        self.lock = threading.Lock()
        self.auth_headers_seen: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    # -- script --------------------------------------------------------------------------------------------
    def fault_for(self, content: str, attempt: int) -> dict[str, Any] | None:
        for needle, plan in self.plans.items():
            if needle in content:
                return plan[attempt] if attempt < len(plan) else None
        return self.default_plan[attempt] if attempt < len(self.default_plan) else None

    def total_successes(self) -> int:
        with self.lock:
            return sum(self.successes.values())


def _make_handler(srv: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # answer in one segment without waiting for the peer's delayed ACK (else ~40 ms per request)
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, doc: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _err(self, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
            self._send(code, {"error": {"message": msg, "type": "fake", "code": str(code)}}, headers)

        def _auth(self) -> bool:
            got = self.headers.get("Authorization", "")
            with srv.lock:
                srv.auth_headers_seen.append(got)
            if got != f"Bearer {srv.api_key}":
                self._err(401, f"Incorrect API key provided: {got.removeprefix('Bearer ')}")
                return False
            return True

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            self.arrived = time.monotonic()
            raw = self._body()
            if not self._auth():
                return
            if self.path.endswith("/chat/completions"):
                return self._chat(json.loads(raw))
            if self.path.endswith("/files"):
                return self._upload(raw)
            if self.path.endswith("/batches"):
                return self._create_batch(json.loads(raw))
            self._err(404, f"no route {self.path}")

        def do_GET(self) -> None:
            if not self._auth():
                return
            parts = self.path.split("?")[0].strip("/").split("/")  # v1, files|batches, id[, content]
            if len(parts) >= 3 and parts[1] == "files":
                data = srv.files.get(parts[2])
                if data is None:
                    return self._err(404, "no such file")
                if len(parts) == 4 and parts[3] == "content":
                    return self._send(200, None, raw=data)
                return self._send(200, _file_obj(parts[2], data))
            if len(parts) == 3 and parts[1] == "batches":
                return self._poll_batch(parts[2])
            self._err(404, f"no route {self.path}")

        def _chat(self, body: dict[str, Any]) -> None:
            # the artificial latency counts from the request's arrival, so the server's own work is inside it
            due = self.arrived + srv.latency
            content = content_of(body)
            with srv.lock:
                attempt = srv.attempts[content]
                srv.attempts[content] += 1
            fault = srv.fault_for(content, attempt)
            kind = fault.get("kind") if fault else None
            doc = completion_body(body, srv.served_model, srv.planted) if kind in (None, "slow") else None
            time.sleep(max(0.0, due - time.monotonic()))
            if kind == "429":
                return self._err(429, "rate limited", {"Retry-After": str(fault.get("retry_after", 0.05))})
            if kind == "500":
                return self._err(500, "internal error")
            if kind == "leak":
                return self._err(500, f"upstream rejected header {self.headers.get('Authorization')}")
            if kind == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if kind == "malformed":
                return self._send(200, None, raw=b'{"id": "chatcmpl-x", "choices": [{"message": ')
            if kind == "slow":
                time.sleep(float(fault.get("s", 1.0)))
            try:
                self._send(200, doc)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up (timeout): not delivered
            with srv.lock:
                # a scripted slow answer is meant to outlast the client's timeout: never counted as delivered
                (srv.late if kind == "slow" else srv.successes)[content] += 1

        def _upload(self, raw: bytes) -> None:
            ctype = self.headers.get("Content-Type", "")
            msg = BytesParser(policy=email_policy).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            data, name = b"", "upload.jsonl"
            for part in msg.iter_parts():
                if part.get_param("name", header="content-disposition") == "file":
                    data = part.get_payload(decode=True) or b""
                    name = part.get_filename() or name
            with srv.lock:
                fid = f"file-{len(srv.files) + 1}"
                srv.files[fid] = data
            self._send(200, _file_obj(fid, data, name))

        def _create_batch(self, body: dict[str, Any]) -> None:
            if body.get("input_file_id") not in srv.files:
                return self._err(400, "input_file_id not found")
            with srv.lock:
                bid = f"batch_{len(srv.batches) + 1}"
                srv.batches[bid] = {
                    "id": bid, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
                    "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window"),
                    "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": 1767225600,
                    "request_counts": {"total": 0, "completed": 0, "failed": 0}, "_polls": 0,
                }  # fmt: skip
            self._send(200, _public(srv.batches[bid]))

        def _poll_batch(self, bid: str) -> None:
            with srv.lock:
                b = srv.batches.get(bid)
                if b is None:
                    return self._err(404, "no such batch")
                b["_polls"] += 1
                if b["status"] == "validating":
                    b["status"] = "in_progress"
                elif b["status"] == "in_progress" and b["_polls"] >= srv.batch_polls_to_complete:
                    self._complete(b)
                doc = _public(b)
            self._send(200, doc)

        def _complete(self, b: dict[str, Any]) -> None:
            lines, ok, failed = [], 0, 0
            for i, ln in enumerate(srv.files[b["input_file_id"]].decode().splitlines()):
                if not ln.strip():
                    continue
                req = json.loads(ln)
                cid = req["custom_id"]
                if cid in srv.batch_failed_custom_ids:
                    failed += 1
                    resp = {"status_code": 500, "request_id": f"req_{i}", "body": {"error": {"message": "boom"}}}
                else:
                    ok += 1
                    resp = {"status_code": 200, "request_id": f"req_{i}",
                            "body": completion_body(req["body"], srv.served_model)}  # fmt: skip
                    srv.successes[content_of(req["body"])] += 1
                lines.append(json.dumps({"id": f"batch_req_{i}", "custom_id": cid, "response": resp, "error": None}))
            fid = f"file-{len(srv.files) + 1}"
            srv.files[fid] = ("\n".join(lines) + "\n").encode()
            b.update(status="completed", output_file_id=fid,
                     request_counts={"total": ok + failed, "completed": ok, "failed": failed})  # fmt: skip

    return Handler


def _file_obj(fid: str, data: bytes, name: str = "file.jsonl") -> dict[str, Any]:
    return {"id": fid, "object": "file", "bytes": len(data), "created_at": 1767225600, "filename": name,
            "purpose": "batch", "status": "processed"}  # fmt: skip


def _public(b: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in b.items() if not k.startswith("_")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--api-key", default="sk-test-fake-0123456789abcdef")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    ap.add_argument("--forever", action="store_true", help="serve until killed (default: until stdin closes)")
    args = ap.parse_args()
    srv = FakeOpenAI(api_key=args.api_key, latency=args.latency)
    print(srv.start(args.port), flush=True)
    if args.forever:
        threading.Event().wait()
    try:
        while True:
            line = input()
            if line.strip() == "stats":
                print(json.dumps({"attempts": sum(srv.attempts.values()), "successes": srv.total_successes(),
                                  "repeated": sum(n - 1 for n in srv.successes.values() if n > 1)}), flush=True)  # fmt: skip
    except EOFError:
        srv.stop()


if __name__ == "__main__":
    main()
