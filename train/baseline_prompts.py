"""The prompts of the phase-1 baselines: the few-shot template, the choice of examples by embedding similarity, and
the saved prompt of each baseline (``baseline_prompts``), exportable as JSON or JSONL.

Few-shot template (chat): the test prompt's own system turns, then each chosen example as a user turn (its prompt
turns) and an assistant turn (its curated answer), the nearest example last (closest to the question), then the test
prompt's remaining turns. Examples come from the train split of the same dataset version, so no held-out answer is
ever shown; they are the ``k`` train prompts nearest to the test prompt in ``curation.embeddings`` space (cosine of
the L2-normalised vectors; the text embedded is the last user turn, as ``records.prompt``, so the vectors the dedupe
and split steps cached are reused).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import UserError
from curation.progress import ProgressFn
from curation.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np

    from train.data import Example

NEAREST_BLOCK = 512  # query rows per similarity product: 512 x 100k train prompts x 4 bytes = 200 MB at most


@dataclass
class Shot:
    """One example shown in a few-shot prompt: its prompt turns without system turns, and its curated answer."""

    record_id: int | None
    messages: list[dict[str, str]]
    answer: str


def split_system(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The leading system turns and the rest of a conversation."""
    n = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    return messages[:n], messages[n:]


def few_shot_messages(prompt_messages: list[dict[str, str]], shots: list[Shot]) -> list[dict[str, str]]:
    """The test prompt with ``shots`` (in prompt order) between its system turns and its own turns."""
    system, rest = split_system(prompt_messages)
    out = list(system)
    for s in shots:
        out += [*s.messages, {"role": "assistant", "content": s.answer}]
    return out + rest


def prompt_of(messages: list[dict[str, str]]) -> str:
    """The text a prompt is embedded by: its last user turn (what ``records.prompt`` holds)."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def shot_of(e: Example) -> Shot:
    return Shot(e.record_id, split_system(e.prompt_messages)[1], e.answer)


def nearest(queries: np.ndarray, pool: np.ndarray, k: int) -> list[list[int]]:
    """For each query row, the indices of the ``k`` most similar pool rows (inner product), most similar first."""
    import numpy as np  # here, not at the top: `distill` loads this module at start (tests/test_start_imports.py)

    k = min(k, pool.shape[0])
    out: list[list[int]] = []
    if k == 0:
        return [[] for _ in range(queries.shape[0])]
    for s in range(0, queries.shape[0], NEAREST_BLOCK):
        sims = queries[s : s + NEAREST_BLOCK] @ pool.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        out += np.take_along_axis(top, order, axis=1).tolist()
    return out


def choose_shots(
    ws: Workspace,
    held: list[Example],
    pool: list[Example],
    k: int,
    *,
    model: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[list[int]]:
    """For each held-out example, the indices into ``pool`` of its ``k`` nearest train examples, in prompt order
    (the nearest last). Embeddings come from (and go to) the workspace cache."""
    from curation.embeddings import embed_texts

    if not pool:
        raise UserError("the dataset version has no train rows to take few-shot examples from")
    texts = [prompt_of(e.prompt_messages) for e in held] + [prompt_of(e.prompt_messages) for e in pool]
    vecs = embed_texts(ws, texts, model=model, progress=progress, cancel=cancel)
    return [list(reversed(ix)) for ix in nearest(vecs[: len(held)], vecs[len(held) :], k)]


# -- saved prompts -------------------------------------------------------------------------------------------------


def prompt_spec(name: str, version: str, held: list[Example], **extra: Any) -> dict[str, Any]:
    """A baseline's prompt as saved: its system prompts, and per held-out item the prompt turns as logged. A few-shot
    spec adds ``examples`` (shots) and each item's ``examples`` (indices, prompt order); a model spec ``teacher``."""
    systems: list[str] = []
    for e in held:
        for m in split_system(e.prompt_messages)[0]:
            if m["content"] not in systems:
                systems.append(m["content"])
    items = [{"record_id": e.record_id, "slice": e.slice, "messages": e.prompt_messages} for e in held]
    return {"name": name, "dataset_version": version, "system_prompts": systems, "template": "chat", "items": items,
            **extra}  # fmt: skip


def rendered(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a saved prompt as the messages that were sent."""
    shots = [Shot(s["record_id"], s["messages"], s["answer"]) for s in spec.get("examples", [])]
    return [{"record_id": it["record_id"], "slice": it["slice"],
             "messages": few_shot_messages(it["messages"], [shots[i] for i in it.get("examples", [])])}
            for it in spec["items"]]  # fmt: skip


def save_prompt(ws: Workspace, name: str, eval_id: int, version: str, spec: dict[str, Any]) -> int:
    """Store the prompt a baseline evaluation used; return its id."""
    with ws.transaction() as cur:
        return int(cur.execute(
            "INSERT INTO baseline_prompts (name, eval_id, dataset_version, spec, created_at) VALUES (?, ?, ?, ?, ?) "
            "RETURNING prompt_id",
            [name, eval_id, version, json.dumps(spec), datetime.now()],
        ).fetchall()[0][0])  # fmt: skip


def get_prompt(ws: Workspace, name: str) -> dict[str, Any]:
    """The newest saved prompt of a baseline with its evaluation's score and verdict; ``UserError`` if none."""
    rows = ws.query_dicts(
        "SELECT p.prompt_id, p.name, p.eval_id, p.dataset_version, CAST(p.spec AS VARCHAR) AS spec, p.created_at, "
        "e.kind, e.base_model, e.score, e.passed FROM baseline_prompts p LEFT JOIN evaluations e USING (eval_id) "
        "WHERE p.name = ? ORDER BY p.prompt_id DESC LIMIT 1",
        [name],
    )
    if not rows:
        known = [r[0] for r in ws.query("SELECT DISTINCT name FROM baseline_prompts ORDER BY 1")]
        hint = f"; known: {', '.join(known)}" if known else "; run `distill baseline` first"
        raise UserError(f"no baseline prompt named {name!r}{hint}")
    row = rows[0]
    row["spec"] = json.loads(row["spec"])
    return row


def export_prompt(ws: Workspace, name: str, path: str | Path) -> Path:
    """Write a baseline's prompt: ``.json`` = the whole spec (system prompts, template, examples, per-item choices,
    score, verdict); ``.jsonl`` = one line per held-out item with the messages as sent."""
    p = Path(path)
    if p.suffix not in (".json", ".jsonl"):
        raise UserError(f"{p.name}: export a baseline prompt to a .json or .jsonl file")
    row = get_prompt(ws, name)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".json":
        head = {k: row[k] for k in ("name", "kind", "eval_id", "dataset_version", "base_model", "score", "passed")}
        doc = {**head, "created_at": row["created_at"].isoformat(), **row["spec"]}
        p.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        lines = (json.dumps(r, ensure_ascii=False) for r in rendered(row["spec"]))
        p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p
