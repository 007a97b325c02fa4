"""Monitor tests: hand-written gateway logs (logfix.py) and small real workspaces."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # logfix, as tests/train does with trainfix
