"""Importing production logs: format detection, preview, import batches, undo.

Formats: ``log`` (logging-proxy request/response records), ``batch`` (OpenAI Batch API output joined to its
input by custom_id), ``batch_input`` (a Batch input file alone: prompts without answers), ``finetune``
(``{"messages": [...]}``), ``table`` (JSON lines of flat objects), ``csv`` and ``parquet`` (with a column mapping).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from curation.importing.batches import list_batches, undo_import
from curation.importing.detect import FORMATS, Detection, detect_format
from curation.importing.preview import preview

if TYPE_CHECKING:
    from curation.importing.load import ImportResult, import_file

__all__ = [
    "FORMATS", "Detection", "ImportResult", "detect_format", "import_file", "list_batches", "preview", "undo_import",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    """``import_file`` and ``ImportResult``, loaded on first use: the import path pulls numpy and pyarrow, which a
    command that only names a format (every CLI command registers its options at start) need not pay for."""
    if name in ("ImportResult", "import_file"):
        from curation.importing import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
