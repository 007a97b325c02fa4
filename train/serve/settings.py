"""The gateway's options (one default each, read by the CLI too), fallback thresholds and where its files live."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UserError

MODES = ("shadow", "canary", "student")
ROUTES = ("student", "teacher", "both")
SHADOW_LATE = "still generating"  # a shadow student error that starts so: not done within shadow_wait_ms
STUDENT_ONLY_SUFFIX = ":student"  # model "<served>:student" = the student alone, whatever the mode (a served teacher)


@dataclass
class Thresholds:
    """When the student's answer goes to the teacher: its confidence (``exp(mean logprob / temperature)``) is under
    the slice's threshold (``slices``, else ``default``)."""

    default: float = 0.5
    slices: dict[str, float] = field(default_factory=dict)
    temperature: float = 1.0

    def for_slice(self, slice_name: str) -> float:
        return self.slices.get(slice_name, self.default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(doc: Any, source: str, base: Thresholds | None = None) -> Thresholds:
        """Thresholds from ``{"default": x, "temperature": t, "slices": {slice: x}}`` or a flat ``{slice: x}``
        (``default`` and ``temperature`` may sit beside the slices); keys not given keep ``base``'s values."""
        out = Thresholds(**asdict(base)) if base is not None else Thresholds()
        if not isinstance(doc, dict):
            raise UserError(f"{source}: expected a JSON object of slice thresholds, got {type(doc).__name__}")
        flat = {k: v for k, v in doc.items() if k not in ("default", "temperature", "slices")}
        nested = doc.get("slices", {})
        if not isinstance(nested, dict):
            raise UserError(f"{source}: field 'slices' must be an object of slice -> threshold")
        for name, v in {**flat, **nested}.items():
            out.slices[str(name)] = _unit(v, f"{source}: slice {name!r}")
        if "default" in doc:
            out.default = _unit(doc["default"], f"{source}: field 'default'")
        if "temperature" in doc:
            t = doc["temperature"]
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
                raise UserError(f"{source}: field 'temperature' must be a number > 0, got {t!r}")
            out.temperature = float(t)
        return out

    @staticmethod
    def from_file(path: str | Path, base: Thresholds | None = None) -> Thresholds:
        """``from_json`` of a file, with a one-line error naming it."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except OSError as exc:
            raise UserError(f"{p}: cannot read thresholds: {exc.strerror}") from None
        except ValueError as exc:
            raise UserError(f"{p}: not JSON: {exc}") from None
        return Thresholds.from_json(doc, str(p), base)


def _unit(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
        raise UserError(f"{what} must be a number between 0 and 1, got {v!r}")
    return float(v)


@dataclass
class StudentSpec:
    """Where the student comes from: a run's adapter, an adapter folder + base model, or a server (``url``) that
    holds it (vLLM with ``--enable-lora --lora-modules NAME=PATH``: ``model`` is NAME)."""

    run_id: int | None = None
    base_model: str | None = None
    adapter: str | None = None
    url: str | None = None
    model: str | None = None
    key_env: str | None = None  # the remote server's key variable, if it wants one
    device: str = "auto"
    precision: str = "auto"

    def validate(self) -> None:
        """``UserError`` unless exactly one student is named."""
        given = [self.run_id is not None, bool(self.base_model or self.adapter), bool(self.url)]
        if sum(given) != 1:
            raise UserError("say which student to serve: a run id, --adapter with --base-model, or --student-url")
        if self.adapter and not self.base_model:
            raise UserError("--adapter needs --base-model (the model the adapter was trained on)")


@dataclass
class ServeConfig:
    """Everything the gateway runs with. ``mode``, ``share`` and the thresholds change live (``distill serve
    control``); the rest is fixed for the server's life."""

    teacher: str | None = None
    mode: str = "shadow"
    share: float = 0.05
    thresholds: Thresholds = field(default_factory=Thresholds)
    host: str = "127.0.0.1"
    port: int = 8000
    served_model: str = "distill-student"
    key_header: str = "X-User-Id"
    slice_header: str = "X-Slice"
    slice_field: str = "metadata.slice"
    bar: str | None = "default"  # the quality bar whose checks (valid JSON, labels...) gate the student's answers
    constrain_labels: bool = False  # a local student's label field kept inside the bar's label set (train.constrain)
    max_batch: int = 8
    # How long a free model waits for the callers of the last batch to come back (answer logged with an fsync of
    # ~5 ms, sent, the next request parsed): only while traffic is concurrent, so a lone caller never pays it.
    batch_wait_ms: float = 25.0
    max_tokens: int = 256  # a request's cap when it gives none
    shadow_wait_ms: float = 1000.0  # how long a shadow response waits for a student still generating
    student_timeout_s: float = 120.0
    teacher_budget_usd: float | None = None
    # After the teacher is found unreachable (or refuses the key), its requests fail at once for this long (the
    # student answers), then the gateway tries it again.
    teacher_retry_s: float = 30.0
    log_max_bytes: int = 64 * 2**20

    def validate(self) -> None:
        """One-line ``UserError`` on the first bad option."""
        check_mode(self.mode, self.share)
        if self.mode != "student" and not self.teacher:
            raise UserError(f"mode {self.mode} needs a teacher (--teacher NAME); without one only --mode student runs")
        if not 1 <= self.port <= 65535 and self.port != 0:
            raise UserError(f"--port must be 1-65535 (or 0 for any free port), got {self.port}")
        if self.max_batch < 1 or self.batch_wait_ms < 0 or self.max_tokens < 1:
            raise UserError("--max-batch and --max-tokens must be >= 1 and --batch-wait-ms >= 0")
        if self.constrain_labels and not self.bar:
            raise UserError("--constrain-labels needs the quality bar that names the label field (not --no-bar)")
        if self.shadow_wait_ms < 0 or self.student_timeout_s <= 0 or self.log_max_bytes < 4096:
            raise UserError("--shadow-wait-ms must be >= 0, the student timeout > 0, the log size >= 4 KB")


def check_mode(mode: str, share: float) -> None:
    """``UserError`` unless ``mode`` is a known mode and ``share`` a fraction."""
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
        raise UserError(f"--share must be between 0 and 1, got {share!r}")


def serve_dir(artifacts_dir: Path) -> Path:
    """The gateway's folder in a workspace's artifacts: ``state.json`` and ``logs/``."""
    return artifacts_dir / "serve"


def logs_dir(artifacts_dir: Path) -> Path:
    return serve_dir(artifacts_dir) / "logs"


def state_path(artifacts_dir: Path) -> Path:
    return serve_dir(artifacts_dir) / "state.json"
