"""Evaluation metrics on model outputs (text), each returning a score in [0, 1].

A metric is a spec dict: ``{"kind": ..., "field"?: ..., "labels"?: [...], "pattern"?: ..., "schema"?: {...}}``.
Comparison metrics (``json_field``, ``json_f1``, ``exact``) score an output against an expected answer;
check metrics (``valid_json``, ``label_in_set``, ``regex``, ``json_schema``) score an output on its own.
``verifier`` runs a curation verifier (``{"kind": "verifier", "verifier": {"type": ...}}``, see
``curation.verifiers``) on the output, with the record's reference for ``exact_match``; ``judge`` asks a teacher
configured in the workspace to grade the output against the teacher's answer (``train.judge``, needs the workspace,
so its scores are computed before ``score`` sees them).
"""

from __future__ import annotations

import json
import re
from typing import Any

from curation.errors import UserError

COMPARISON = {"json_field", "json_f1", "exact", "judge"}
CHECKS = {"valid_json", "label_in_set", "regex", "json_schema", "verifier"}
KINDS = COMPARISON | CHECKS
VERIFIER_TYPES = ("json", "json_schema", "label", "regex", "exact_match")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_json(text: str | None) -> Any:
    """The JSON value in ``text`` (a ```json fence allowed), or None when it does not parse."""
    if text is None:
        return None
    s = _FENCE.sub("", text.strip())
    try:
        return json.loads(s)
    except (json.JSONDecodeError, ValueError):
        return None


def _norm(v: Any) -> Any:
    # Labels differing only in case or surrounding space count as the same answer.
    return v.strip().casefold() if isinstance(v, str) else v


def valid_json(pred: str | None) -> float:
    return 0.0 if parse_json(pred) is None else 1.0


def json_field(pred: str | None, expected: str, field: str) -> float:
    """1 when both parse as JSON objects and agree on ``field`` (case- and space-insensitive for strings)."""
    p, e = parse_json(pred), parse_json(expected)
    if not isinstance(p, dict) or not isinstance(e, dict) or field not in p:
        return 0.0
    return 1.0 if _norm(p[field]) == _norm(e.get(field)) else 0.0


def json_f1(pred: str | None, expected: str) -> float:
    """Field-level F1 over the top-level (key, value) pairs of two JSON objects."""
    p, e = parse_json(pred), parse_json(expected)
    if not isinstance(e, dict):
        return 1.0 if p == e and p is not None else 0.0
    if not isinstance(p, dict):
        return 0.0
    if not p and not e:
        return 1.0
    hits = sum(1 for k, v in p.items() if k in e and _norm(json.dumps(v)) == _norm(json.dumps(e[k])))
    if hits == 0:
        return 0.0
    precision, recall = hits / len(p), hits / len(e)
    return 2 * precision * recall / (precision + recall)


def exact(pred: str | None, expected: str) -> float:
    """Exact match after collapsing whitespace."""
    return 1.0 if " ".join((pred or "").split()) == " ".join(expected.split()) else 0.0


def label_in_set(pred: str | None, field: str | None, labels: list[str]) -> float:
    """1 when the output (or its JSON ``field``) is one of ``labels``."""
    if field:
        p = parse_json(pred)
        value = p.get(field) if isinstance(p, dict) else None
    else:
        value = pred
    allowed = {_norm(x) for x in labels}
    return 1.0 if isinstance(value, str) and _norm(value) in allowed else 0.0


def json_schema(pred: str | None, schema: dict[str, Any]) -> float:
    import jsonschema

    p = parse_json(pred)
    if p is None:
        return 0.0
    return 1.0 if jsonschema.Draft202012Validator(schema).is_valid(p) else 0.0


def metric_name(spec: dict[str, Any]) -> str:
    """A short column name: ``exact:intent``, ``json_f1``, ``valid_json``, ``label_in_set:intent``..."""
    kind = spec["kind"]
    if kind == "json_field":
        return f"exact:{spec['field']}"
    if kind == "label_in_set" and spec.get("field"):
        return f"label_in_set:{spec['field']}"
    if spec.get("name"):
        return str(spec["name"])
    if kind == "verifier":
        v = spec.get("verifier") or {}
        return ":".join(str(x) for x in ("verifier", v.get("type") or spec.get("filter"), v.get("field")) if x)
    if kind == "judge":
        return f"judge:{spec['teacher']}"
    return kind


def metric_text(m: dict[str, Any]) -> str:
    """A metric spec as the text ``parse_metric`` reads back (for editors and defaults)."""
    if m["kind"] == "label_in_set":
        return f"label_in_set:{m.get('field') or ''}={'|'.join(m['labels'])}"
    if m["kind"] == "regex":
        return f"regex:{m['pattern']}"
    if m["kind"] == "verifier":
        if m.get("filter") and not m.get("verifier"):
            return f"verifier:@{m['filter']}"
        return "verifier:" + json.dumps(m["verifier"], separators=(",", ":"))
    if m["kind"] == "judge":
        return f"judge:{m['teacher']}"
    return metric_name(m)


def validate_metric(spec: dict[str, Any]) -> None:
    """Raise ``UserError`` when a metric spec lacks what its kind needs."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise UserError(f"unknown metric {kind!r}; choose from {', '.join(sorted(KINDS))}")
    need = {"json_field": "field", "label_in_set": "labels", "regex": "pattern", "json_schema": "schema",
            "judge": "teacher"}.get(kind)  # fmt: skip
    if need and not spec.get(need):
        raise UserError(f"metric {kind} needs {need}")
    if kind == "verifier":
        if not isinstance(spec.get("verifier"), dict):
            raise UserError("metric verifier needs a curation verifier spec or a filter name (verifier:@NAME)")
        from curation.verifiers import Verifier

        Verifier.from_spec(spec["verifier"])  # raises UserError on a bad spec
    if kind == "regex":
        try:
            re.compile(spec["pattern"])
        except re.error as exc:
            raise UserError(f"bad regex {spec['pattern']!r}: {exc}") from None


def is_check(spec: dict[str, Any]) -> bool:
    """Whether the metric scores an output on its own (no expected answer needed)."""
    return spec["kind"] in CHECKS


_VERIFIERS: dict[str, Any] = {}


def verifier_score(spec: dict[str, Any], pred: str | None, reference: str | None) -> float | None:
    """1/0 from the curation verifier of ``spec``; None for exact_match when there is no reference to match."""
    from curation.verifiers import Verifier

    key = json.dumps(spec["verifier"], sort_keys=True)
    v = _VERIFIERS.get(key)
    if v is None:
        v = _VERIFIERS[key] = Verifier.from_spec(spec["verifier"])
    if v.kind == "exact_match" and reference is None:
        return None  # curation counts "no reference" as a pass; an evaluation leaves the row out instead
    return 1.0 if v.check(pred, reference).ok else 0.0


def score(
    spec: dict[str, Any], pred: str | None, expected: str | None = None, reference: str | None = None
) -> float | None:
    """The metric's score for ``pred`` (against ``expected`` for comparison metrics; None when that is missing).
    ``reference`` is what a verifier's exact_match compares with. Judge scores come from ``train.judge``."""
    kind = spec["kind"]
    if kind == "verifier":
        return verifier_score(spec, pred, reference)
    if kind == "judge":
        raise ValueError("judge scores are computed by train.judge.judge_items, not by score()")
    if kind == "valid_json":
        return valid_json(pred)
    if kind == "label_in_set":
        return label_in_set(pred, spec.get("field"), spec["labels"])
    if kind == "regex":
        return 1.0 if pred is not None and re.fullmatch(spec["pattern"], pred.strip(), re.S) else 0.0
    if kind == "json_schema":
        return json_schema(pred, spec["schema"])
    if expected is None:
        return None
    if kind == "json_field":
        return json_field(pred, expected, spec["field"])
    if kind == "json_f1":
        return json_f1(pred, expected)
    return exact(pred, expected)


def split_metrics(text: str) -> list[str]:
    """Comma-separated metric texts, commas inside {...} or [...] (a JSON verifier spec) kept."""
    out, depth, cur = [], 0, []
    for ch in text:
        depth += (ch in "{[") - (ch in "}]")
        if ch == "," and depth <= 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return [m for m in out if m]


def parse_verifier(arg: str) -> dict[str, Any]:
    """A verifier metric from ``json``, ``label:FIELD=a|b``, ``regex:[FIELD=]RE``, ``exact_match[:FIELD]``,
    ``json_schema:FILE``, a JSON curation spec ``{"type": ...}``, or ``@NAME`` (a curation filter's verifier, looked
    up when the bar is stored)."""
    if arg.startswith("@"):
        return {"kind": "verifier", "filter": arg[1:]}
    if arg.startswith("{"):
        try:
            v = json.loads(arg)
        except json.JSONDecodeError as exc:
            raise UserError(f"verifier spec is not JSON: {exc}") from None
        return {"kind": "verifier", "verifier": v}
    vtype, _, rest = arg.partition(":")
    if vtype not in VERIFIER_TYPES:
        raise UserError(f"unknown verifier {vtype!r}; choose from {', '.join(VERIFIER_TYPES)}, {{JSON}} or @FILTER")
    v: dict[str, Any] = {"type": vtype}
    if vtype == "label":
        field, sep, labels = rest.partition("=")
        v.update({"allowed": [x for x in labels.split("|") if x]} if sep else {"allowed": []})
        if field:
            v["field"] = field
    elif vtype == "regex":
        field, sep, pattern = rest.partition("=") if re.fullmatch(r"[\w.]+=.*", rest, re.S) else ("", "", rest)
        v["pattern"] = pattern
        if field:
            v["field"] = field
    elif vtype == "exact_match" and rest:
        v["field"] = rest
    elif vtype == "json_schema":
        try:
            v["schema"] = json.loads(open(rest, encoding="utf-8").read())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read JSON schema {rest}: {exc}") from None
    if vtype in ("label", "exact_match"):
        v["normalize"] = True  # the same tolerance as the other label metrics
    return {"kind": "verifier", "verifier": v}


def parse_metric(text: str) -> dict[str, Any]:
    """A metric spec from CLI text: ``exact:intent``, ``json_f1``, ``valid_json``, ``exact``,
    ``label_in_set:intent=a|b|c``, ``regex:PATTERN``, ``json_schema:FILE``, ``verifier:...`` (see
    ``parse_verifier``), ``judge:TEACHER``."""
    kind, _, arg = text.strip().partition(":")
    if kind == "verifier":
        spec = parse_verifier(arg)
        if "filter" not in spec:
            validate_metric(spec)
        return spec
    if kind == "judge":
        spec = {"kind": "judge", "teacher": arg}
    elif kind == "exact" and arg:
        spec: dict[str, Any] = {"kind": "json_field", "field": arg}
    elif kind == "label_in_set":
        field, _, labels = arg.partition("=") if "=" in arg else ("", "", arg)
        spec = {"kind": kind, "field": field or None, "labels": [x for x in labels.split("|") if x]}
    elif kind == "regex":
        spec = {"kind": kind, "pattern": arg}
    elif kind == "json_schema":
        try:
            spec = {"kind": kind, "schema": json.loads(open(arg, encoding="utf-8").read())}
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read JSON schema {arg}: {exc}") from None
    else:
        spec = {"kind": kind}
    validate_metric(spec)
    return spec
