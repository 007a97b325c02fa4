"""What the rollout has done so far, read from what the gateway leaves in the workspace's artifacts (``distill
serve``: ``<artifacts>/serve/state.json`` while it runs, request logs ``<artifacts>/serve/logs/serve-NNNNNN.jsonl``
with each line's ``metadata.serve.mode``) and from the monitor's alarms (the workspace setting ``monitor.alarms``).
Nothing here starts or asks the gateway; a workspace that never served reads as "not started".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from curation.workspace import Workspace

LOG_NAME = re.compile(r"^serve-\d{6}\.jsonl$")  # the gateway's rotated request logs
ALARMS_SETTING = "monitor.alarms"  # the monitor's alarm rules (a non-empty list or object = alarms are set)
MODES = ("shadow", "canary", "student", "direct")


@dataclass
class RolloutState:
    """Whether a gateway runs or ran, how many logged requests each mode served, and whether alarms are set."""

    running: dict[str, object] | None = None  # the gateway's state.json (pid, base_url, ...) while it runs
    log_files: int = 0
    requests: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)
    alarms: int = 0

    @property
    def started(self) -> bool:
        return self.running is not None or self.requests > 0


def serve_folder(ws: Workspace) -> Path:
    return ws.artifacts_dir / "serve"


def count_modes(path: Path) -> tuple[int, dict[str, int]]:
    """Lines of one request log and how many were served in each mode. The gateway writes compact JSON with
    ``metadata`` after the request and the response, so the line's last ``"mode":"`` is the serving mode; no line is
    parsed (a log rotates at 64 MB)."""
    lines, counts = 0, dict.fromkeys(MODES, 0)
    key = b'"mode":"'
    with path.open("rb") as f:
        for line in f:
            lines += 1
            at = line.rfind(key)
            if at >= 0:
                mode = line[at + len(key) : line.find(b'"', at + len(key))].decode("utf-8", "replace")
                if mode in counts:
                    counts[mode] += 1
    return lines, {m: c for m, c in counts.items() if c}


def rollout_state(ws: Workspace) -> RolloutState:
    """The rollout as the artifacts and settings show it."""
    st = RolloutState()
    folder = serve_folder(ws)
    state_file = folder / "state.json"
    if state_file.is_file():
        try:
            st.running = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            st.running = None
    logs = folder / "logs"
    files = sorted(p for p in logs.iterdir() if LOG_NAME.match(p.name)) if logs.is_dir() else []
    st.log_files = len(files)
    for p in files:
        n, modes = count_modes(p)
        st.requests += n
        for m, c in modes.items():
            st.by_mode[m] = st.by_mode.get(m, 0) + c
    alarms = ws.get_setting(ALARMS_SETTING)
    st.alarms = len(alarms) if isinstance(alarms, list | dict) else 0
    return st
