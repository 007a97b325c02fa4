"""Teachers configured by name in the workspace, and the one place their API keys are read.

A teacher row holds the base URL, the pinned model version, the NAME of the environment variable with the key,
sampling parameters, prices and the terms acknowledgement. The key itself is read at call time and never stored;
``redact`` scrubs it (and anything key-shaped) out of text before that text is stored or printed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from curation.errors import UserError
from curation.workspace import Workspace

DEFAULT_PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 512, "logprobs": True, "top_logprobs": 5}
ALLOWED_PARAMS = {
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "logprobs", "top_logprobs", "seed", "stop",
    "presence_penalty", "frequency_penalty", "response_format", "reasoning_effort",
}  # fmt: skip
NO_KEY = "no-key"  # sent as the bearer token to a teacher configured without a key
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Bearer tokens and common provider key shapes, scrubbed even when we never saw the exact key.
_KEYLIKE = re.compile(r"(Bearer\s+)\S+|\b(sk|pk|rk|key)-[A-Za-z0-9_\-]{8,}", re.IGNORECASE)


@dataclass
class TeacherConfig:
    """One configured teacher."""

    name: str
    base_url: str
    model: str
    api_key_env: str  # "" = no key: a local server (vLLM, Ollama, the sample's offline teacher) that needs none
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    price_in_per_m: float = 0.0
    price_out_per_m: float = 0.0
    batch_discount: float = 0.5
    terms_ack: bool = False
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 6

    @property
    def max_output_tokens(self) -> int:
        """The output cap sent with every request (the budget reserves this much)."""
        return int(self.params.get("max_completion_tokens") or self.params.get("max_tokens") or 512)

    def cost(self, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float:
        """USD for one request's usage."""
        usd = (prompt_tokens * self.price_in_per_m + completion_tokens * self.price_out_per_m) / 1e6
        return usd * (self.batch_discount if batch else 1.0)

    def public_dict(self) -> dict[str, Any]:
        """Everything about the teacher that may be shown (the env var's name, never its value)."""
        d = asdict(self)
        d["api_key_set"] = not self.api_key_env or bool(os.environ.get(self.api_key_env))
        return d


def api_key(cfg: TeacherConfig) -> str:
    """Read the key from the environment at call time; a clear error if it is not set. A teacher that needs no key
    sends a fixed placeholder (the openai client insists on one; such servers ignore it)."""
    if not cfg.api_key_env:
        return NO_KEY
    key = os.environ.get(cfg.api_key_env)
    if not key:
        raise UserError(
            f"teacher {cfg.name!r}: environment variable {cfg.api_key_env} is not set (it holds the API key)"
        )
    return key


def redact(text: str | None, cfg: TeacherConfig | None = None) -> str | None:
    """``text`` with the teacher's key (if set) and anything key-shaped replaced by ``***``."""
    if text is None:
        return None
    if cfg is not None and cfg.api_key_env:
        key = os.environ.get(cfg.api_key_env)
        if key and len(key) >= 4:
            text = text.replace(key, "***")
    return _KEYLIKE.sub(lambda m: (m.group(1) or "") + "***", text)


def require_terms(cfg: TeacherConfig) -> None:
    """Refuse to generate with a teacher whose terms were not acknowledged."""
    if not cfg.terms_ack:
        raise UserError(
            f"teacher {cfg.name!r}: acknowledge that the provider's terms allow training on its outputs first "
            f"(distill teachers add {cfg.name} ... --ack-terms)"
        )


class TeacherConfigError(UserError):
    """A bad teacher setting; ``field`` is the ``TeacherConfig`` attribute it is about (the studio marks that field,
    the CLI names its flag)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field


def validate(cfg: TeacherConfig) -> None:
    """Check a config before storing it; a ``TeacherConfigError`` with one line on the first problem."""
    if not _NAME.match(cfg.name):
        raise TeacherConfigError("name", f"bad teacher name {cfg.name!r}: letters, digits, '.', '_', '-' (max 64)")
    if not cfg.base_url.startswith(("http://", "https://")):
        raise TeacherConfigError("base_url", f"the base URL must start with http:// or https://, got {cfg.base_url!r}")
    if not cfg.model.strip():
        raise TeacherConfigError("model", "the model must name the pinned model version, e.g. gpt-4o-2024-08-06")
    if cfg.api_key_env and not _ENV.match(cfg.api_key_env):
        raise TeacherConfigError(
            "api_key_env", f"takes the NAME of an environment variable, got {redact(cfg.api_key_env)!r}"
        )
    if _KEYLIKE.search(cfg.api_key_env):
        raise TeacherConfigError("api_key_env", "looks like a key itself; give the name of the variable that holds it")
    unknown = set(cfg.params) - ALLOWED_PARAMS
    if unknown:
        raise TeacherConfigError("params", f"unknown sampling parameter(s): {', '.join(sorted(unknown))} "
                                 f"(known: {', '.join(sorted(ALLOWED_PARAMS))})")  # fmt: skip
    for f in ("price_in_per_m", "price_out_per_m", "batch_discount"):
        if getattr(cfg, f) < 0:
            raise TeacherConfigError(f, "must be >= 0")
    if cfg.concurrency < 1:
        raise TeacherConfigError("concurrency", "must be >= 1")
    if cfg.timeout_s <= 0:
        raise TeacherConfigError("timeout_s", "must be > 0")
    if cfg.max_retries < 0:
        raise TeacherConfigError("max_retries", "must be >= 0")


_COLS = (
    "name", "base_url", "model", "api_key_env", "params", "price_in_per_m", "price_out_per_m", "batch_discount",
    "terms_ack", "concurrency", "timeout_s", "max_retries",
)  # fmt: skip


def save_teacher(ws: Workspace, cfg: TeacherConfig, *, replace: bool = False) -> None:
    """Insert (or with ``replace`` update) a teacher."""
    validate(cfg)
    now = datetime.now()
    values = [getattr(cfg, c) if c != "params" else json.dumps(cfg.params) for c in _COLS]
    with ws.transaction() as cur:
        exists = cur.execute("SELECT created_at FROM teachers WHERE name = ?", [cfg.name]).fetchall()
        if exists and not replace:
            raise UserError(f"teacher {cfg.name!r} already exists (use --replace to update it)")
        cur.execute("DELETE FROM teachers WHERE name = ?", [cfg.name])
        cur.execute(
            f"INSERT INTO teachers ({', '.join(_COLS)}, terms_ack_at, created_at, updated_at) "
            f"VALUES ({', '.join('?' for _ in _COLS)}, ?, ?, ?)",
            [*values, now if cfg.terms_ack else None, exists[0][0] if exists else now, now],
        )


def get_teacher(ws: Workspace, name: str) -> TeacherConfig:
    """The teacher called ``name`` or a UserError listing the known ones."""
    rows = ws.query_dicts(f"SELECT {', '.join(_COLS)} FROM teachers WHERE name = ?", [name])
    if not rows:
        known = [r[0] for r in ws.query("SELECT name FROM teachers ORDER BY name")]
        hint = f"; known: {', '.join(known)}" if known else "; add one with `distill teachers add`"
        raise UserError(f"no teacher named {name!r}{hint}")
    row = rows[0]
    row["params"] = json.loads(row["params"])
    return TeacherConfig(**row)


def list_teachers(ws: Workspace) -> list[TeacherConfig]:
    """Every configured teacher, by name."""
    return [get_teacher(ws, r[0]) for r in ws.query("SELECT name FROM teachers ORDER BY name")]


def remove_teacher(ws: Workspace, name: str) -> None:
    """Forget a teacher's config (its outputs, cache and ledger stay)."""
    get_teacher(ws, name)
    with ws.transaction() as cur:
        cur.execute("DELETE FROM teachers WHERE name = ?", [name])
