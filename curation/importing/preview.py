"""Preview an import: run the real importer on the first lines into a scratch workspace and show the result."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from curation.importing.detect import detect_format
from curation.importing.plan import MAX_LINE_MB
from curation.importing.sql import sql_str
from curation.importing.streams import open_binary
from curation.workspace import Workspace


def _head(path: Path, dest: Path, limit: int, fmt: str, array: bool) -> Path:
    if array:  # the first elements as an array of their own (a cut through a pretty-printed array is not JSON)
        from curation.importing.arrays import iter_element_chunks  # (numpy, pyarrow: loaded when used)
        from curation.importing.lines import StreamEnd

        out = dest / path.name.removesuffix(".gz")
        elements: list[bytes] = []
        for table, _ in iter_element_chunks(path, None, StreamEnd(), MAX_LINE_MB * 1024 * 1024):
            elements += table.column("raw").to_pylist()[: limit - len(elements)]
            if len(elements) >= limit:
                break
        out.write_bytes(b"[" + b",\n".join(elements) + b"]")
        return out
    if fmt == "parquet":
        out = dest / "head.parquet"
        con = duckdb.connect()
        try:
            con.execute(f"COPY (SELECT * FROM read_parquet({sql_str(str(path))}) LIMIT {limit}) TO {sql_str(str(out))}")
        finally:
            con.close()
        return out
    out = dest / (path.name.removesuffix(".gz") if path.name.endswith(".gz") else path.name)
    keep = limit + (1 if fmt == "csv" else 0)
    with open_binary(path) as src, open(out, "wb") as dst:
        for i, line in enumerate(src):
            if i >= keep:
                break
            dst.write(line)
    return out


def preview(
    path: str | Path,
    *,
    fmt: str | None = None,
    slice_field: str | None = None,
    mapping: dict[str, str] | None = None,
    batch_input: str | Path | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The first ``limit`` lines as they would import: line_no, prompt, response, slice, reference, error."""
    from curation.importing.load import import_file  # (numpy, pyarrow: loaded when used)

    p = Path(path)
    det = detect_format(p)
    fmt = fmt or det.format
    tmp = Path(tempfile.mkdtemp(prefix="distill-preview-"))
    try:
        head = _head(p, tmp, limit, fmt, det.array)
        with Workspace.open(tmp / "preview.duckdb", service=False) as ws:  # a scratch file: no one else uses it
            import_file(
                ws, head, fmt=fmt, slice_field=slice_field or det.slice_field, mapping=mapping,
                batch_input=batch_input or det.batch_input,
            )  # fmt: skip
            rows = ws.query_dicts(
                """SELECT source_line AS line_no, prompt, response, slice, reference, NULL AS error FROM records
                UNION ALL SELECT line_no, NULL, NULL, NULL, NULL, coalesce(field || ': ', '') || reason
                FROM quarantine WHERE source_file = ?
                ORDER BY line_no LIMIT ?""",
                [str(head.resolve()), limit],
            )
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
