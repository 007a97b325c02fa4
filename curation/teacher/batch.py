"""Batch API mode: write the input file, upload it, create the batch, poll, download, import, attach.

Every step's result is persisted in ``teacher_batches`` before the next, so a job resumes by its id after a
restart. The terms check, the cache lookup before submitting and the budget estimate are the request path's
(``TeacherSession.admit``: only the transport differs). The output is imported with the foundation's Batch importer
(errored lines go to quarantine); each imported answer is then attached to the record it was asked for with the
request path's writer function (``store.write_finished``: cache, outputs, the record's response if it had none,
ledger) and the imported copy, a duplicate of that record, is removed again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from curation.errors import UserError
from curation.teacher.client import make_client
from curation.teacher.config import TeacherConfig, get_teacher, redact
from curation.teacher.requests import TeacherRequest, TeacherSession
from curation.teacher.selection import Selection, select_records
from curation.teacher.store import Answer, Finished, write_finished
from curation.workspace import Workspace

ENDPOINT = "/v1/chat/completions"
FINISHED = {"completed", "failed", "expired", "cancelled"}
PURPOSE = "batch"


@dataclass
class BatchJob:
    """One Batch API job as persisted."""

    job_id: int
    teacher: str
    provider_batch_id: str | None
    input_file_id: str | None
    output_file_id: str | None
    input_path: str
    output_path: str | None
    n_requests: int
    status: str
    import_batch_id: int | None
    n_attached: int | None
    error: str | None
    # what this submit left out because the budget had no room for it (not stored)
    n_over_budget: int = field(default=0, metadata={"stored": False})


_FIELDS = tuple(f.name for f in fields(BatchJob) if f.metadata.get("stored", True))


def get_job(ws: Workspace, job_id: int) -> BatchJob:
    """The persisted job or a UserError."""
    rows = ws.query(f"SELECT {', '.join(_FIELDS)} FROM teacher_batches WHERE job_id = ?", [job_id])
    if not rows:
        raise UserError(f"no batch job {job_id} (see `distill batch status`)")
    return BatchJob(*rows[0])


def list_batch_jobs(ws: Workspace) -> list[BatchJob]:
    """Every job, newest first."""
    return [BatchJob(*r) for r in ws.query(f"SELECT {', '.join(_FIELDS)} FROM teacher_batches ORDER BY job_id DESC")]


def _save(ws: Workspace, job_id: int, **changes: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in changes)
    with ws.transaction() as cur:
        cur.execute(f"UPDATE teacher_batches SET {sets}, updated_at = ? WHERE job_id = ?",
                    [*changes.values(), datetime.now(), job_id])  # fmt: skip


def _pending_record_ids(ws: Workspace, teacher: str) -> set[int]:
    ids: set[int] = set()
    for (path,) in ws.query("SELECT input_path FROM teacher_batches WHERE teacher = ? AND status <> 'collected' "
                            "AND status NOT IN ('failed', 'expired', 'cancelled')", [teacher]):  # fmt: skip
        mapping = Path(path).with_name("requests.json")
        if mapping.exists():
            for item in json.loads(mapping.read_text()).values():
                ids.update(item["record_ids"])
    return ids


def submit_batch(
    ws: Workspace, teacher: str, selection: Selection | None = None, *, budget_usd: float | None = None
) -> BatchJob:
    """Write the input JSONL for the selected records (cache hits are attached at once; with a budget, only the
    requests whose worst-case batch cost fits), upload it and create a batch."""
    with TeacherSession(ws, teacher, budget_usd=budget_usd) as session:  # terms and key checked first
        pending = _pending_record_ids(ws, teacher)
        selected = select_records(ws, teacher, selection or Selection())
        requests = [TeacherRequest(messages, record_ids=[rid]) for rid, messages in selected if rid not in pending]
        rep = session.admit(PURPOSE, requests)
        cfg = session.cfg
    queued = list({id(r): r for r in rep.results if r.source == "queued"}.values())
    over = len({r.key for r in rep.results if r.source == "skipped"})
    if not queued:
        why = f"the budget covers none of the {over} requests left" if over else "every selected record has an " \
            "answer, is cached or is in a pending job"  # fmt: skip
        raise UserError(f"nothing to submit: {why}")
    with ws.transaction() as cur:
        job_id = int(cur.execute("SELECT nextval('teacher_batch_seq')").fetchall()[0][0])
        folder = ws.artifacts_dir / "teacher_batches" / f"job-{job_id}"
        folder.mkdir(parents=True, exist_ok=True)
        inp = folder / "input.jsonl"
        mapping = {}
        with open(inp, "w", encoding="utf-8") as f:
            for r in queued:
                cid = f"r{r.record_ids[0]}-{r.key[:16]}"
                mapping[cid] = {"key": r.key, "record_ids": r.record_ids}
                body = {"model": cfg.model, "messages": r.messages, **r.params}
                f.write(json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}) + "\n")
        (folder / "requests.json").write_text(json.dumps(mapping))
        now = datetime.now()
        cur.execute(
            "INSERT INTO teacher_batches (job_id, teacher, input_path, n_requests, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'written', ?, ?)",
            [job_id, teacher, str(inp), len(queued), now, now],
        )
    job = advance(ws, job_id)
    job.n_over_budget = over
    return job


def advance(ws: Workspace, job_id: int) -> BatchJob:
    """Take a job one step further where it stopped: upload, create, or poll the provider."""
    job = get_job(ws, job_id)
    if job.status == "collected":
        return job
    cfg = get_teacher(ws, job.teacher)
    client = make_client(cfg)
    try:
        if job.input_file_id is None:
            with open(job.input_path, "rb") as f:
                up = client.files.create(file=(Path(job.input_path).name, f.read()), purpose="batch")
            _save(ws, job_id, input_file_id=up.id, status="uploaded")
        job = get_job(ws, job_id)
        if job.provider_batch_id is None:
            b = client.batches.create(input_file_id=job.input_file_id, endpoint=ENDPOINT, completion_window="24h",
                                      metadata={"distill_job": str(job_id)})  # fmt: skip
            _save(ws, job_id, provider_batch_id=b.id, status=b.status)
        elif job.status not in FINISHED and job.import_batch_id is None:
            b = client.batches.retrieve(job.provider_batch_id)
            err = redact(json.dumps(b.errors.model_dump()) if b.errors else None, cfg)
            _save(ws, job_id, status=b.status, output_file_id=b.output_file_id, error_file_id=b.error_file_id,
                  error=err)  # fmt: skip
    except Exception as exc:
        raise UserError(f"batch job {job_id}: {redact(f'{type(exc).__name__}: {exc}', cfg)}") from None
    finally:
        client.close()
    return get_job(ws, job_id)


def batch_status(ws: Workspace, job_id: int) -> BatchJob:
    """Poll the provider once (resuming an unfinished upload or create) and return the job."""
    return advance(ws, job_id)


def collect_batch(
    ws: Workspace, job_id: int, *, wait: bool = False, poll_s: float = 30.0, cancel: threading.Event | None = None
) -> BatchJob:
    """Download a completed job's output, import it and attach each answer to its record (idempotent)."""
    job = advance(ws, job_id)
    while wait and job.status not in FINISHED and job.status != "collected":
        if cancel is not None and cancel.wait(poll_s):
            return job
        if cancel is None:
            threading.Event().wait(poll_s)
        job = advance(ws, job_id)
    if job.status == "collected" or (job.status != "completed" and job.import_batch_id is None):
        return job
    cfg = get_teacher(ws, job.teacher)
    out = Path(job.input_path).with_name("output.jsonl")
    if job.output_path is None:
        client = make_client(cfg)
        try:
            if job.output_file_id is None:
                raise UserError(f"batch job {job_id} completed without an output file")
            out.write_bytes(client.files.content(job.output_file_id).read())
        finally:
            client.close()
        _save(ws, job_id, output_path=str(out))
    import_batch_id = job.import_batch_id or _find_import(ws, out)
    if import_batch_id is None:
        from curation.importing import import_file

        # attach=False: _attach below puts each answer on the records it was asked for, as a teacher output
        result = import_file(ws, out, fmt="batch", batch_input=Path(job.input_path), attach=False)
        import_batch_id = result.batch_id
    _save(ws, job_id, import_batch_id=import_batch_id, status="importing")
    _attach(ws, cfg, job, int(import_batch_id) if import_batch_id is not None else None)
    return get_job(ws, job_id)


def _find_import(ws: Workspace, out: Path) -> int | None:
    """An import of this output file that a killed collect already committed."""
    return ws.scalar("SELECT max(batch_id) FROM import_batches WHERE source_file = ? AND status = 'done'",
                     [str(out.resolve())])  # fmt: skip


def ws_has_any(cur: Any, record_ids: list[int]) -> bool:
    """Whether any of ``record_ids`` still exists."""
    if not record_ids:
        return False
    return bool(cur.execute("SELECT count(*) FROM records WHERE record_id IN (SELECT unnest(?))",
                            [record_ids]).fetchall()[0][0])  # fmt: skip


def _attach(ws: Workspace, cfg: TeacherConfig, job: BatchJob, import_batch_id: int | None) -> int:
    """Move imported answers onto the records they were asked for; ledger every request line."""
    mapping: dict[str, dict[str, Any]] = json.loads(Path(job.input_path).with_name("requests.json").read_text())
    rows = ws.query(
        "SELECT record_id, json_extract_string(metadata, '$.custom_id'), response, CAST(response_logprobs AS VARCHAR), "
        "teacher_model, finish_reason, prompt_tokens, completion_tokens FROM records WHERE batch_id = ?",
        [import_batch_id],
    ) if import_batch_id is not None else []  # fmt: skip
    attached = 0
    answered: set[str] = set()
    with ws.transaction() as cur:
        for copy_id, cid, text, lp, model, finish, pt, ct in rows:
            item = mapping.get(cid or "")
            if item is None:
                continue
            answered.add(cid)
            ans = Answer(model or cfg.model, text, json.loads(lp) if lp else None, finish, pt or 0, ct or 0,
                         cfg.cost(pt or 0, ct or 0, batch=True), 0.0)  # fmt: skip
            live = [r for r in item["record_ids"] if r != copy_id]
            done = Finished(item["key"], live, ans, 200, 1, None, PURPOSE)
            n = sum(write_finished(cur, teacher=cfg.name, model=cfg.model, items=[done], mode="batch").values())
            attached += n
            # The imported copy duplicates a record that now holds this answer. If every record it was asked for
            # is gone (`distill undo-import --force` meanwhile), it goes too: the answer is in the cache and the
            # ledger, so a re-import and `distill generate` attach it again for free.
            if n or not ws_has_any(cur, live):
                cur.execute("DELETE FROM records WHERE record_id = ?", [copy_id])
        missing = "no answer in the batch output (see the import's quarantine)"
        write_finished(cur, teacher=cfg.name, model=cfg.model, mode="batch", items=[
            Finished(item["key"], [], None, None, 1, missing, PURPOSE) for cid, item in mapping.items()
            if cid not in answered])  # fmt: skip
        if import_batch_id is not None:
            cur.execute(
                "UPDATE import_batches SET n_imported = (SELECT count(*) FROM records WHERE batch_id = ?), "
                "warnings = to_json(list_append(coalesce(CAST(warnings AS VARCHAR[]), []), ?)) WHERE batch_id = ?",
                [import_batch_id, f"{attached} answers attached to existing records (teacher {cfg.name})",
                 import_batch_id],
            )  # fmt: skip
        cur.execute("UPDATE teacher_batches SET status = 'collected', n_attached = ?, updated_at = ? WHERE job_id = ?",
                    [attached, datetime.now(), job.job_id])  # fmt: skip
    return attached
