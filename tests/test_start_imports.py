"""Start-up: what `distill` (any command) and the studio's first screen load before they draw anything.

torch, transformers and openai cost 1.5-3 s on this machine kind and are needed only to train, evaluate or ask a
teacher; numpy and pyarrow (~0.25 s of CPU) only to import, dedupe or export. They load where they are used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "openai", "sentence_transformers", "faiss", "peft", "numpy", "pyarrow", "polars")
# What `distill studio` runs before its first frame on a workspace with records: the CLI registers every command
# (build_parser: each module's register() runs),
# the app, the screens it opens on (overview; records and review for `start=`) and the service client.
START = """
import json, sys
import distill.cli
distill.cli.build_parser()
import studio.app, studio.screens.overview, studio.screens.records, studio.screens.review
from curation.service import client, launch
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.timeout(120)
def test_start_loads_nothing_heavy() -> None:
    out = subprocess.run([sys.executable, "-c", START], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    loaded = set(json.loads(out.stdout))
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []
