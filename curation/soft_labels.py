"""Soft labels: what the teachers thought of each possible value of an answer's checkable field.

For a JSON answer with a labelled field (``{"intent": "refund", ...}``), the teacher's stored token logprobs give,
at the tokens that decide the value, the runner-up tokens and their probabilities. Each alternative that spells the
start of another label moves its probability to that label. Several teachers (``teacher_outputs``) are averaged,
one vote each (a teacher without logprobs votes with certainty for its own value). The result is a small set of
candidate answers per record: the curated answer with the field's value replaced, each with the teachers'
probability, and which one is the hard target (the reference's value where there is one, else the curated value).
Curation computes these; training re-tokenises the candidates for its student (``train.soft``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from curation.filters import answer_span
from curation.lazy import lazy_module
from curation.teacher_answers import TEACHER_ANSWERS_SQL
from curation.verifiers import _MISSING, get_field, parse_json
from curation.workspace import Workspace

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = lazy_module("pyarrow")  # only when soft labels are exported (curation.lazy)

MIN_PROB = 1e-4  # candidates the teachers give less than this are left out (they only cost training compute)
MAX_CANDIDATES = 16  # per record, the hard target always included


@dataclass(frozen=True)
class LabelSpec:
    """The checkable field of the answers and its label set (None: the values the references name)."""

    field: str
    labels: tuple[str, ...] | None = None
    normalize: bool = True  # labels differing only in case (and surrounding space) are the same label


@dataclass(frozen=True)
class Candidate:
    """One possible answer: the field's ``value``, the full ``answer`` text with it, the teachers' probability."""

    value: str
    answer: str
    prob: float
    hard: bool = False  # the hard target: the reference's value, else the curated answer's


def _key(value: str, normalize: bool) -> str:
    return value.strip().casefold() if normalize else value


def _fold(text: str, normalize: bool) -> str:
    return text.casefold() if normalize else text


def field_value(text: str | None, field: str) -> str | None:
    """The string value of ``field`` in a JSON answer, or None (not JSON, no such field, not a string)."""
    doc = parse_json(text)
    if doc is _MISSING:
        return None
    v = get_field(doc, field)
    return v if isinstance(v, str) else None


def reference_value(reference: str | None, field: str) -> str | None:
    """The label a reference gives: its field when it is a JSON document with it, else the bare reference text
    (as ``curation.verifiers.ExactMatchVerifier`` reads references)."""
    if reference is None or not reference.strip():
        return None
    doc = parse_json(reference)
    if doc is not _MISSING and isinstance(doc, dict | list):
        v = get_field(doc, field)
        return v if isinstance(v, str) else None
    return reference.strip()


def label_set(spec: LabelSpec, references: Iterable[str | None]) -> list[str]:
    """The labels of ``spec``: its own list, else the distinct values the references give (sorted)."""
    if spec.labels:
        return list(dict.fromkeys(spec.labels))
    return sorted({v for r in references if (v := reference_value(r, spec.field)) is not None})


def _escaped(value: str) -> str:
    """A value as it is written inside a JSON string (without the quotes)."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def replace_value(answer: str, field: str, value: str) -> str | None:
    """``answer`` with the string value of ``field`` replaced by ``value`` (every other character kept), or None
    when the field's value cannot be located as a JSON string."""
    span = answer_span(answer, field)
    current = field_value(answer, field)
    if span is None or current is None or answer[span[0] - 1 : span[0]] != '"':
        return None
    if json.loads('"' + answer[span[0] : span[1]] + '"') != current:
        return None  # the first occurrence of the key is not the field parsed (a nested key of the same name)
    return answer[: span[0]] + _escaped(value) + answer[span[1] :]


def logprob_distribution(
    logprobs: Sequence[Mapping[str, Any]] | None, field: str, labels: Sequence[str], normalize: bool = True
) -> dict[str, float] | None:
    """The teacher's distribution over the field's value from its token logprobs (OpenAI shape: token, logprob,
    top_logprobs), or None when the answer's tokens do not spell a JSON string value for ``field``.

    Walks the tokens that spell the value (and its closing quote) while more than one label still fits what the
    chosen tokens spelled so far (the deciding tokens). At each, every alternative token that keeps the text before
    the value and goes on to spell the start of some labels gives them (evenly) its probability times the chosen
    path's probability up to there; alternatives that fit no label (a newline, another casing when labels are
    case-sensitive) are dropped. What is left on the chosen path goes to the chosen value. Normalised to sum 1.
    """
    if not logprobs:
        return None
    toks = [str(t.get("token", "")) for t in logprobs]
    text = "".join(toks)
    span = answer_span(text, field)
    chosen = field_value(text, field)
    if span is None or chosen is None or text[span[0] - 1 : span[0]] != '"':
        return None
    vs, ve = span[0], span[1] + 1  # the value and its closing quote
    canon = {_key(lab, normalize): lab for lab in labels}
    streams = {lab: _fold(_escaped(lab) + '"', normalize) for lab in canon.values()}

    def fitting(stream: str) -> list[str]:
        """The labels whose value (and closing quote) starts with ``stream``, or that ``stream`` runs past."""
        s = _fold(stream, normalize)
        return [lab for lab, w in streams.items() if w.startswith(s) or s.startswith(w)]

    mass: dict[str, float] = {}
    path, pos = 1.0, 0
    for tok, entry in zip(toks, logprobs, strict=True):
        start, end = pos, pos + len(tok)
        pos = end
        if end <= vs or start >= ve:
            continue
        consumed = text[vs:start] if start > vs else ""
        if len(fitting(consumed)) <= 1:
            break  # the chosen tokens already name one label (or none): the rest decides nothing
        pre = text[start:vs] if start < vs else ""
        for alt in entry.get("top_logprobs") or []:
            a, lp = str(alt.get("token", "")), alt.get("logprob")
            if a == tok or lp is None or not a.startswith(pre) or len(a) == len(pre):
                continue
            fit = fitting(consumed + a[len(pre) :])
            for lab in fit:
                mass[lab] = mass.get(lab, 0.0) + path * math.exp(float(lp)) / len(fit)
        lp = entry.get("logprob")
        path *= math.exp(float(lp)) if lp is not None else 1.0
    own = canon.get(_key(chosen, normalize), chosen)
    mass[own] = mass.get(own, 0.0) + path
    total = sum(mass.values())
    return {k: v / total for k, v in mass.items()} if total > 0 else None


def teachers_distribution(
    sources: Sequence[tuple[str | None, Sequence[Mapping[str, Any]] | None]], field: str, labels: Sequence[str],
    normalize: bool = True,
) -> dict[str, float]:  # fmt: skip
    """The mean over teachers (answer text, logprobs or None) of each one's distribution over the field's value:
    from its logprobs where they spell the value, else a certain vote for its own value. Teachers whose answer has
    no such field give nothing."""
    canon = {_key(lab, normalize): lab for lab in labels}
    dists = []
    for text, lps in sources:
        own = field_value(text, field)
        if own is None:
            continue
        d = logprob_distribution(lps, field, labels, normalize) if lps else None
        dists.append(d or {canon.get(_key(own, normalize), own): 1.0})
    out: dict[str, float] = {}
    for d in dists:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + v / len(dists)
    return out


def candidates(
    answer: str,
    reference: str | None,
    sources: Sequence[tuple[str | None, Sequence[Mapping[str, Any]] | None]],
    spec: LabelSpec,
    labels: Sequence[str],
    *,
    edited: bool = False,
) -> list[Candidate]:
    """The candidate answers of one record for soft-label training (most probable first), or [] when the curated
    ``answer`` has no string value for the field. ``edited``: a reviewer changed the answer, so when its value
    differs from the teachers' the reviewer's value is certain."""
    own = field_value(answer, spec.field)
    if own is None or replace_value(answer, spec.field, own) is None:
        return []
    canon = {_key(lab, spec.normalize): lab for lab in labels}
    own_c = canon.get(_key(own, spec.normalize), own)
    dist = teachers_distribution(sources, spec.field, labels, spec.normalize)
    if not dist or (edited and max(dist, key=dist.__getitem__) != own_c):
        dist = {own_c: 1.0}
    ref = reference_value(reference, spec.field)
    hard = canon.get(_key(ref, spec.normalize), ref) if ref is not None else own_c
    kept = sorted((v for v, p in dist.items() if p >= MIN_PROB), key=lambda v: (-dist[v], v))[:MAX_CANDIDATES]
    if hard not in kept:
        kept = [*kept[: MAX_CANDIDATES - 1], hard]
    total = sum(dist.get(v, 0.0) for v in kept) or 1.0
    out = []
    for v in kept:
        text = answer if v == own_c else replace_value(answer, spec.field, v)
        if text is not None:
            out.append(Candidate(v, text, dist.get(v, 0.0) / total, v == hard))
    return out


# The token logprobs as typed lists, without the per-token byte arrays (a third of the JSON) and without a Python
# JSON parse: on the 5,000-record sample json.loads of the stored text took 6.5 s, this 4.6 s (a busy 2-core box).
_LOGPROBS_SQL = (
    'json_transform({col}, \'[{{"token":"VARCHAR","logprob":"DOUBLE",'
    '"top_logprobs":[{{"token":"VARCHAR","logprob":"DOUBLE"}}]}}]\')'
)


def teacher_sources(ws: Workspace, record_ids: Sequence[int]) -> dict[int, list[tuple[str | None, list | None]]]:
    """Per record, each teacher's answer with its logprobs (``curation.teacher_answers``): the record's own
    response first, then every other teacher's output by name."""
    if not record_ids:
        return {}
    cur = ws.cursor()
    try:
        cur.register("_ids", pa.table({"record_id": pa.array(sorted(set(record_ids)), pa.int64())}))
        rows = cur.sql(
            f"SELECT t.record_id, t.response, {_LOGPROBS_SQL.format(col='t.response_logprobs')} AS lp "
            f"FROM ({TEACHER_ANSWERS_SQL}) t JOIN _ids USING (record_id) ORDER BY t.record_id, t.own DESC, t.teacher"
        ).to_arrow_table()
        cur.unregister("_ids")
    finally:
        cur.close()
    out: dict[int, list[tuple[str | None, list | None]]] = {}
    for row in rows.to_pylist():
        out.setdefault(int(row["record_id"]), []).append((row["response"], row["lp"]))
    return out


def _token_rows(lps: list | None) -> list[dict[str, Any]] | None:
    if not lps:
        return None
    return [
        {"token": str(t.get("token", "")), "logprob": t.get("logprob"),
         "top": [{"token": str(a.get("token", "")), "logprob": a.get("logprob")} for a in t.get("top_logprobs") or []]}
        for t in lps
    ]  # fmt: skip


def soft_columns(
    ws: Workspace, rows: Sequence[Mapping[str, Any]], spec: LabelSpec | None, teacher_tokens: bool
) -> list[dict[str, Any]]:
    """For dataset member rows (record_id, curated ``response``, ``reference``), the soft-label columns of the
    training file: ``label_field``, ``candidates`` (``Candidate`` as dicts, or None) and ``teacher_tokens`` (the
    teacher's token logprobs when the curated answer is exactly the record's own teacher answer, else None)."""
    sources = teacher_sources(ws, [int(r["record_id"]) for r in rows])
    labels = label_set(spec, (r["reference"] for r in rows)) if spec is not None else []
    out = []
    for r in rows:
        src = sources.get(int(r["record_id"]), [])
        original = src[0] if src else (None, None)
        edited = original[0] != r["response"]
        cands = candidates(r["response"], r["reference"], src, spec, labels, edited=edited) if spec else []
        out.append({
            "label_field": spec.field if spec is not None else None,
            "candidates": [asdict(c) for c in cands] or None,
            "teacher_tokens": _token_rows(original[1]) if teacher_tokens and not edited else None,
        })  # fmt: skip
    return out
