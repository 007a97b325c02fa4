"""Format detection: look at the first records of a file and guess its format, slice field and column mapping."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UserError
from curation.importing.nesting import MAX_DEPTH, too_deep
from curation.importing.pyrepr import convert
from curation.importing.streams import is_gzip, open_binary

FORMATS = ("log", "batch", "batch_input", "finetune", "table", "csv", "parquet")

SLICE_CANDIDATES = (
    "metadata.slice", "metadata.product_area", "metadata.category", "metadata.intent", "metadata.topic",
    "metadata.task", "metadata.domain", "slice", "category", "intent", "topic", "product_area", "domain",
    "motivation_app",
)  # fmt: skip
REFERENCE_CANDIDATES = ("metadata.reference", "reference", "target", "gold", "expected", "ground_truth")
PROMPT_COLUMNS = ("prompt", "text", "input", "question", "instruction", "query", "message", "user")
RESPONSE_COLUMNS = ("response", "output", "completion", "answer", "assistant", "label", "category", "intent")
TABLE_SLICE_COLUMNS = ("slice", "category", "intent", "topic", "product_area", "motivation_app", "label")
TABLE_REFERENCE_COLUMNS = ("reference", "target", "gold", "expected", "ground_truth")

SNIFF_BYTES = 256 * 1024


@dataclass
class Detection:
    """What a file looks like: its format and suggested options."""

    path: Path
    format: str
    compressed: bool
    fields: list[str] = field(default_factory=list)
    slice_field: str | None = None
    mapping: dict[str, str] | None = None
    batch_input: Path | None = None
    reference_field: str | None = None
    problem: str | None = None  # set when the file cannot be read as records at all (empty, binary)
    array: bool = False  # one JSON array of records (``[{...}, {...}]``) instead of one record per line


def read_head(path: Path) -> bytes:
    """The first ``SNIFF_BYTES`` of the file (decompressed), without a byte order mark."""
    with open_binary(path) as f:
        return f.read(SNIFF_BYTES).removeprefix(b"\xef\xbb\xbf")


def sniff_objects(path: Path, limit: int = 50, python_repr: bool = False) -> tuple[list[dict[str, Any]], bytes]:
    """The first ``limit`` JSON objects that parse, one per line or one per element of a JSON array file, and the
    raw head of the file. Lines nested deeper than ``nesting.MAX_DEPTH`` are skipped (a recursive parser fails);
    with ``python_repr``, lines that are Python reprs count as the objects they convert to.
    """
    from curation.importing.arrays import looks_like_array, sniff_elements  # (numpy, pyarrow: not at CLI start)

    head = read_head(path)
    if looks_like_array(head):
        return sniff_elements(head, limit), head
    objs: list[dict[str, Any]] = []
    for raw in head.split(b"\n")[:-1] if len(head) == SNIFF_BYTES else head.split(b"\n"):
        raw = raw.strip().removeprefix(b"\xef\xbb\xbf")
        if not raw or too_deep(raw):
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            converted = convert(raw.decode("utf-8", "replace"), MAX_DEPTH)[0] if python_repr else None
            if converted is None:
                continue
            obj = json.loads(converted)
        if isinstance(obj, dict):
            objs.append(obj)
            if len(objs) >= limit:
                break
    return objs, head


def field_paths(obj: dict[str, Any], prefix: str = "", depth: int = 2) -> list[str]:
    """Dotted paths to the scalar and nested fields of an object, two levels deep."""
    out: list[str] = []
    for k, v in obj.items():
        p = f"{prefix}{k}"
        out.append(p)
        if isinstance(v, dict) and depth > 1:
            out.extend(field_paths(v, p + ".", depth - 1))
    return out


def get_path(obj: Any, path: str) -> Any:
    """Follow a dotted path into nested dicts; None when absent."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _classify(objs: list[dict[str, Any]]) -> str:
    keys = set().union(*(o.keys() for o in objs))
    if "custom_id" in keys and ("body" in keys or "method" in keys):
        return "batch_input"
    if "custom_id" in keys and ("response" in keys or "error" in keys):
        return "batch"
    if "request" in keys and "response" in keys:
        return "log"
    if "messages" in keys:
        return "finetune"
    return "table"


def _pick(candidates: tuple[str, ...], present: list[str]) -> str | None:
    lower = {p.lower(): p for p in present}
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def _common_path(objs: list[dict[str, Any]], candidates: tuple[str, ...]) -> str | None:
    for c in candidates:
        hits = sum(1 for o in objs if get_path(o, c) is not None)
        if objs and hits >= max(1, len(objs) // 2):
            return c
    return None


def table_mapping(columns: list[str]) -> dict[str, str]:
    """Guess prompt/response/slice/reference columns from column names."""
    mapping: dict[str, str] = {}
    prompt = _pick(PROMPT_COLUMNS, columns)
    if prompt:
        mapping["prompt"] = prompt
    rest = [c for c in columns if c != prompt]
    response = _pick(RESPONSE_COLUMNS, rest)
    if response:
        mapping["response"] = response
    sl = _pick(TABLE_SLICE_COLUMNS, columns)
    if sl:
        mapping["slice"] = sl
    ref = _pick(TABLE_REFERENCE_COLUMNS, [c for c in rest if c != response])
    if ref:
        mapping["reference"] = ref
    return mapping


def find_batch_input(path: Path) -> Path | None:
    """A sibling JSONL whose custom_ids overlap this Batch output's (the matching input file)."""
    objs, _ = sniff_objects(path, 200)
    ids = {o.get("custom_id") for o in objs if "custom_id" in o}
    best: tuple[int, Path] | None = None
    for sib in sorted(path.parent.iterdir()):
        if sib == path or not sib.is_file() or not any(sib.name.endswith(s) for s in (".jsonl", ".jsonl.gz", ".json")):
            continue
        sib_objs, _ = sniff_objects(sib, 200)
        if not sib_objs or _classify(sib_objs) != "batch_input":
            continue
        overlap = len(ids & {o.get("custom_id") for o in sib_objs})
        if overlap and (best is None or overlap > best[0]):
            best = (overlap, sib)
    return best[1] if best else None


def detect_format(path: str | Path, accept_python_repr: bool = False) -> Detection:
    """Guess the format of ``path`` from its extension and first records (Python reprs too, when accepted)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    if p.is_dir():
        raise UserError(f"{p} is a directory; give a file")
    compressed = is_gzip(p) if p.stat().st_size >= 2 else False
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        return _detect_table(p, "parquet", compressed)
    if name.endswith((".csv", ".tsv")):
        return _detect_table(p, "csv", compressed)
    if p.stat().st_size == 0:
        return Detection(p, "log", compressed, problem="file is empty")
    from curation.importing.arrays import looks_like_array

    objs, head = sniff_objects(p, python_repr=accept_python_repr)
    array = looks_like_array(head)
    if not objs:
        if b"\x00" in head:
            return Detection(p, "log", compressed, problem="binary file (contains NUL bytes), not JSON lines")
        return Detection(p, "log", compressed, array=array)  # every line is bad: the importer quarantines them
    fmt = _classify(objs)
    fields = sorted(set().union(*(field_paths(o) for o in objs)))
    det = Detection(p, fmt, compressed, fields=fields, array=array)
    if fmt == "table":
        det.mapping = table_mapping(sorted(set().union(*(o.keys() for o in objs))))
        det.slice_field = det.mapping.get("slice")
        return det
    if fmt == "batch":
        det.batch_input = find_batch_input(p)
    if fmt in ("batch", "batch_input"):
        # Slices of Batch requests live in the request body's metadata (the importer exposes it as "metadata").
        source = sniff_objects(det.batch_input)[0] if det.batch_input else (objs if fmt == "batch_input" else [])
        objs = [{"metadata": get_path(o, "body.metadata") or {}} for o in source]
    det.slice_field = _common_path(objs, SLICE_CANDIDATES)
    det.reference_field = _common_path(objs, REFERENCE_CANDIDATES) or (
        "metadata.reference" if any(get_path(o, "metadata.reference") is not None for o in objs) else None
    )
    return det


def _detect_table(p: Path, fmt: str, compressed: bool) -> Detection:
    import duckdb

    con = duckdb.connect()
    try:
        reader = "read_parquet" if fmt == "parquet" else "read_csv"
        opts = "" if fmt == "parquet" else ", header=true, all_varchar=true, ignore_errors=true"
        cols = [d[0] for d in con.execute(f"SELECT * FROM {reader}(?{opts}) LIMIT 0", [str(p)]).description]
    except duckdb.Error as exc:
        return Detection(p, fmt, compressed, problem=f"cannot read as {fmt}: {str(exc).splitlines()[0]}")
    finally:
        con.close()
    mapping = table_mapping(cols)
    return Detection(p, fmt, compressed, fields=cols, slice_field=mapping.get("slice"), mapping=mapping)
