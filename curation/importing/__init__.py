"""Importing production logs: format detection, preview, import batches, undo.

Formats: ``log`` (logging-proxy request/response records), ``batch`` (OpenAI Batch API output joined to its
input by custom_id), ``batch_input`` (a Batch input file alone: prompts without answers), ``finetune``
(``{"messages": [...]}``), ``table`` (JSON lines of flat objects), ``csv`` and ``parquet`` (with a column mapping).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curation.importing.batches import list_batches, undo_import
    from curation.importing.detect import FORMATS, Detection, detect_format
    from curation.importing.load import ImportResult, import_file
    from curation.importing.preview import preview

# Each name from the module that defines it, imported on first use: the import path pulls numpy and pyarrow, which
# a CLI command that only names a format (every command registers its options at start) need not pay for.
_FROM = {
    "FORMATS": "detect", "Detection": "detect", "detect_format": "detect", "ImportResult": "load",
    "import_file": "load", "list_batches": "batches", "undo_import": "batches", "preview": "preview",
}  # fmt: skip
__all__ = [
    "FORMATS", "Detection", "ImportResult", "detect_format", "import_file", "list_batches", "preview", "undo_import",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_FROM[name]}"), name)
