"""Slices: named ways of assigning each record a slice (a field, a SQL expression, or embedding clusters).

A slicing's assignments are stored in ``slicing_assignments``; records keep their own ``slice`` column and a
reviewer's ``slice_override`` always wins. ``slice_shares`` shows how records spread over slices.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from curation.effective import ACTIVE_SLICING_SETTING, active_slicing, effective_sql, slicing_exists
from curation.embeddings import EMBEDDING_MODEL
from curation.errors import UserError
from curation.options import IntOption, OptionSet, TextOption
from curation.pool_options import SLICING
from curation.progress import ProgressFn, report
from curation.records import NONE_SLICE, copy_active_slices
from curation.sql_guard import validate_expression
from curation.workspace import Workspace

SLICES = OptionSet("slices", (SLICING,))
SLICES_DEFINE = OptionSet(
    "slices define",
    (
        TextOption(name="name", positional=True, required=True, help="name of the slicing"),
        TextOption(name="field", metavar="PATH", help="records column or metadata.KEY"),
        TextOption(name="sql", metavar="EXPR", label="SQL expression", help="SQL expression over records r"),
        IntOption(name="clusters", metavar="K", minimum=2, help="k-means over prompt embeddings, named by terms"),
        IntOption(name="seed", default=0, required=True, help="random seed of the k-means"),
        EMBEDDING_MODEL,
    ),
)

RECORD_FIELDS = {
    "slice",
    "teacher_model",
    "finish_reason",
    "origin",
    "source_file",
    "reference",
    "prompt",
    "response",
    "batch_id",
}
JSON_FIELDS = {"metadata", "request_params"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_WORD_RE = re.compile(r"[a-z][a-z']{2,}")
STOPWORDS = frozenset(
    "the and for you your with this that have has not are was were can could would should will from what when how "
    "why who which there their they them our out but all any been being into about please thanks thank hello just "
    "get got its it's i'm i've don't does did doing also than then too very more most some such only own same".split()
)


@dataclass
class SliceShare:
    """One slice's size in the workspace."""

    slice: str
    n: int
    share: float
    n_with_response: int


def field_expr(field: str) -> str:
    """SQL for a field path: a records column (``teacher_model``) or a JSON path (``metadata.product_area``)."""
    head, _, rest = field.partition(".")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", field):
        raise UserError(f"bad field path {field!r}")
    if head in JSON_FIELDS and rest:
        return f"json_extract_string(r.{head}, '$.{rest}')"
    if head in RECORD_FIELDS and not rest:
        return f"CAST(r.{head} AS VARCHAR)"
    raise UserError(
        f"unknown field {field!r}: use a records column ({', '.join(sorted(RECORD_FIELDS))}) or metadata.KEY"
    )


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise UserError(f"slicing name {name!r}: use letters, digits, _ . : - (max 64)")


def preview_expr(ws: Workspace, expr: str, limit: int = 50) -> list[tuple[str, int]]:
    """Slice counts an SQL expression over ``records r`` would give (without storing anything)."""
    guarded = validate_expression(ws, expr)  # reads the rows only: no sequences, files or settings
    try:
        rows = ws.query(
            f"SELECT coalesce(CAST({guarded} AS VARCHAR), '{NONE_SLICE}') AS s, count(*) FROM records r "
            f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(limit)}"
        )
    except Exception as exc:  # duckdb parser/binder errors: the user's expression is wrong
        raise UserError(f"slice expression failed: {str(exc).splitlines()[0]}") from None
    return [(str(s), int(n)) for s, n in rows]


def define_by_expr(ws: Workspace, name: str, expr: str, *, kind: str = "sql", spec: dict | None = None) -> int:
    """Store a slicing computed by an SQL expression over ``records r``; returns records assigned."""
    _check_name(name)
    preview_expr(ws, expr, limit=1)  # validates
    guarded = validate_expression(ws, expr)
    with ws.transaction() as cur:
        _replace(cur, name, kind, spec or {"expr": expr})
        cur.execute(
            "INSERT INTO slicing_assignments SELECT ?, r.record_id, "
            f"coalesce(CAST({guarded} AS VARCHAR), '{NONE_SLICE}') FROM records r",
            [name],
        )
        _assigned(ws, cur, name)
        return int(cur.execute("SELECT count(*) FROM slicing_assignments WHERE slicing = ?", [name]).fetchall()[0][0])


def define_by_field(ws: Workspace, name: str, field: str) -> int:
    """Store a slicing by a field path (``metadata.product_area``, ``teacher_model``...)."""
    return define_by_expr(ws, name, field_expr(field), kind="field", spec={"field": field})


def _assigned(ws: Workspace, cur: duckdb.DuckDBPyConnection, name: str) -> None:
    """After ``name``'s assignments changed: when it is the slicing in use, refresh the records' copy of them."""
    if name == active_slicing(ws):
        copy_active_slices(cur, name)


def _replace(cur, name: str, kind: str, spec: dict) -> None:
    cur.execute("DELETE FROM slicing_assignments WHERE slicing = ?", [name])
    cur.execute("DELETE FROM slicings WHERE name = ?", [name])
    cur.execute("INSERT INTO slicings VALUES (?, ?, ?, ?)", [name, kind, json.dumps(spec), datetime.now()])


@dataclass
class ClusterSlicing:
    """A k-means slicing of prompts: cluster names and sizes (stored only when applied)."""

    name: str
    k: int
    seed: int
    model: str | None
    names: list[str]
    sizes: list[int]
    record_ids: list[int]
    labels: list[int]


def distinctive_terms(texts_by_cluster: list[list[str]], top: int = 3) -> list[str]:
    """Name each cluster by its most distinctive words (class TF-IDF: frequent here, rare in other clusters)."""
    counts = [
        Counter(w for t in texts for w in _WORD_RE.findall(t.lower()) if w not in STOPWORDS)
        for texts in texts_by_cluster
    ]
    df = Counter(w for c in counts for w in c)
    k = len(counts)
    names: list[str] = []
    for i, c in enumerate(counts):
        total = sum(c.values()) or 1
        scored = sorted(c, key=lambda w: (-(c[w] / total) * math.log(1 + k / df[w]), w))
        base = "/".join(scored[:top]) or f"cluster-{i}"
        name, n = base, 2
        while name in names:
            name, n = f"{base}#{n}", n + 1
        names.append(name)
    return names


def cluster_prompts(
    ws: Workspace,
    name: str,
    k: int,
    *,
    seed: int = SLICES_DEFINE.default("seed"),
    model: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ClusterSlicing:
    """K-means over prompt embeddings (cached); each cluster named by its distinctive terms. Stores nothing."""
    import faiss

    from curation.embeddings import embed_texts

    _check_name(name)
    rows = ws.query("SELECT record_id, coalesce(prompt, '') FROM records ORDER BY record_id")
    if len(rows) < k:
        raise UserError(f"cannot make {k} clusters from {len(rows)} records")
    ids = [int(r[0]) for r in rows]
    texts = [str(r[1]) for r in rows]
    vecs = embed_texts(ws, texts, model=model, progress=progress, cancel=cancel)
    report(progress, cancel, "k-means", 0, 1)
    km = faiss.Kmeans(vecs.shape[1], k, niter=25, seed=seed, spherical=True, verbose=False)
    km.train(vecs)
    _, assign = km.index.search(vecs, 1)
    labels = assign.reshape(-1).tolist()
    groups: list[list[str]] = [[] for _ in range(k)]
    for lab, t in zip(labels, texts, strict=True):
        groups[lab].append(t)
    report(progress, cancel, "k-means", 1, 1)
    names = distinctive_terms(groups)
    return ClusterSlicing(name, k, seed, model, names, [len(g) for g in groups], ids, labels)


def store_clusters(ws: Workspace, cs: ClusterSlicing) -> int:
    """Store a cluster slicing computed by ``cluster_prompts``."""
    spec = {"k": cs.k, "seed": cs.seed, "model": cs.model, "names": cs.names}
    with ws.transaction() as cur:
        _replace(cur, cs.name, "clusters", spec)
        import pyarrow as pa

        tbl = pa.table(
            {"record_id": pa.array(cs.record_ids, pa.int64()), "slice": pa.array([cs.names[i] for i in cs.labels])}
        )
        cur.register("_cl", tbl)
        cur.execute("INSERT INTO slicing_assignments SELECT ?, record_id, slice FROM _cl", [cs.name])
        cur.unregister("_cl")
        _assigned(ws, cur, cs.name)
    return len(cs.record_ids)


def list_slicings(ws: Workspace) -> list[dict]:
    """Stored slicings with their number of distinct slices."""
    return ws.query_dicts(
        "SELECT s.name, s.kind, CAST(s.spec AS VARCHAR) AS spec, s.created_at, count(DISTINCT a.slice) AS n_slices, "
        "s.name = ? AS active FROM slicings s LEFT JOIN slicing_assignments a ON a.slicing = s.name "
        "GROUP BY ALL ORDER BY s.name",
        [ws.get_setting(ACTIVE_SLICING_SETTING) or ""],
    )


def use_slicing(ws: Workspace, name: str | None) -> None:
    """Make a stored slicing the one every reader of records uses (None = records' own slice): the setting and the
    records' copy of its assignments change in one transaction."""
    if name is not None and not slicing_exists(ws, name):
        raise UserError(f"no slicing named {name!r} (see `distill slices list`)")
    with ws.transaction() as cur:
        copy_active_slices(cur, name)
        ws.set_setting(ACTIVE_SLICING_SETTING, name, cur=cur)


def slice_shares(ws: Workspace, slicing: str | None = None) -> list[SliceShare]:
    """Records per effective slice under ``slicing`` (default: the active one), largest first."""
    base, params = effective_sql(ws, slicing)
    rows = ws.query(f"SELECT slice, count(*), count(response) FROM ({base}) GROUP BY 1 ORDER BY 2 DESC, 1", params)
    total = sum(int(r[1]) for r in rows) or 1
    return [SliceShare(str(s), int(n), int(n) / total, int(nr)) for s, n, nr in rows]


def shares_array(counts: dict[str, float]) -> dict[str, float]:
    """Normalise counts to shares."""
    total = float(sum(counts.values())) or 1.0
    return {k: float(v) / total for k, v in counts.items()}


def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    """Total variation distance between two distributions over slices (0 = equal, 1 = disjoint)."""
    keys = set(p) | set(q)
    import numpy as np  # (the CLI reads this module's options at every start)

    return 0.5 * float(np.sum([abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys]))


@dataclass
class SlicingPreview:
    """A slicing definition checked and counted, not stored yet (``store_definition`` stores it)."""

    name: str
    kind: str  # field | sql | clusters
    rows: list[tuple[str, int]]  # slice, records (largest first)
    field: str | None = None
    expr: str | None = None
    clusters: ClusterSlicing | None = None


def preview_definition(ws: Workspace, values: dict[str, Any], *, progress: ProgressFn | None = None,
                       cancel: threading.Event | None = None) -> SlicingPreview:  # fmt: skip
    """Parsed ``slices define`` options -> the counts per slice; exactly one of field, SQL or clusters."""
    given = [k for k in ("field", "sql", "clusters") if values.get(k)]
    if len(given) != 1:
        opts = [SLICES_DEFINE[k] for k in ("field", "sql", "clusters")]
        raise UserError("give one of " + ", ".join(f"{o.label} ({o.flag})" for o in opts))
    name = values["name"]
    _check_name(name)
    if given[0] == "clusters":
        cs = cluster_prompts(ws, name, values["clusters"], seed=values["seed"], model=values.get("model"),
                             progress=progress, cancel=cancel)  # fmt: skip
        rows = sorted(zip(cs.names, cs.sizes, strict=True), key=lambda x: -x[1])
        return SlicingPreview(name, "clusters", rows, clusters=cs)
    expr = field_expr(values["field"]) if given[0] == "field" else values["sql"]
    return SlicingPreview(name, given[0], preview_expr(ws, expr), field=values.get("field"), expr=expr)


def store_definition(ws: Workspace, p: SlicingPreview) -> int:
    """Store a previewed slicing; returns the records assigned."""
    if p.clusters is not None:
        return store_clusters(ws, p.clusters)
    if p.field:
        return define_by_field(ws, p.name, p.field)
    return define_by_expr(ws, p.name, p.expr or "")
