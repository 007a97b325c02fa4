"""Importing production logs: format detection, preview, import batches, undo.

Formats: ``log`` (logging-proxy request/response records), ``batch`` (OpenAI Batch API output joined to its
input by custom_id), ``batch_input`` (a Batch input file alone: prompts without answers), ``finetune``
(``{"messages": [...]}``), ``table`` (JSON lines of flat objects), ``csv`` and ``parquet`` (with a column mapping).
"""

from curation.importing.batches import list_batches, undo_import
from curation.importing.detect import FORMATS, Detection, detect_format
from curation.importing.load import ImportResult, import_file
from curation.importing.preview import preview

__all__ = [
    "FORMATS", "Detection", "ImportResult", "detect_format", "import_file", "list_batches", "preview", "undo_import",
]  # fmt: skip
