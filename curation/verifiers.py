"""Verifiers for checkable answers, built from small JSON specs (shared with training evaluation).

Specs (``type`` picks the check; ``field`` = a dotted path into the answer parsed as JSON, optional):
  {"type": "json"}                                        the answer parses as JSON
  {"type": "json_schema", "schema": {...}}                the answer is JSON valid against the schema
  {"type": "label", "field": "intent", "allowed": [...]}  the (field) value is in the allowed set
  {"type": "regex", "pattern": "...", "field": ...}       the (field) text matches (re.fullmatch unless "search": true)
  {"type": "exact_match", "field": "intent"}              the (field) value equals the reference's (same field if JSON)
Options: "normalize": true (exact_match/label: case and surrounding whitespace ignored).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from curation.errors import UserError

_MISSING = object()


@dataclass(frozen=True)
class VerifierResult:
    """Whether an answer passed, and why not."""

    ok: bool
    reason: str = ""


def parse_json(text: str | None) -> Any:
    """The answer as JSON, tolerating a ```json fence around it; ``_MISSING`` when it does not parse."""
    if text is None:
        return _MISSING
    t = text.strip()
    if t.startswith("```"):
        t = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", t)
    try:
        return json.loads(t)
    except (ValueError, TypeError):
        return _MISSING


def get_field(doc: Any, path: str) -> Any:
    """A dotted path into parsed JSON (``a.b.0``), or ``_MISSING``."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


NO_LABEL = "(none)"


def answer_label(text: str | None, field: str | None) -> str:
    """The label of an answer: its (dotted) JSON field, or the whole answer, normalised as the metrics compare
    labels (case and surrounding space ignored); ``(none)`` when it has none. Evaluation stratifies by it, dedupe
    compares near-duplicates' answers by it."""
    value: Any = text if field is None else get_field(parse_json(text), field)
    if not isinstance(value, str | int | float | bool | list | dict):  # None, or the field is missing
        return NO_LABEL
    s = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return s.strip().casefold() or NO_LABEL


def _as_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)


class Verifier:
    """A check on an answer text. Build with ``Verifier.from_spec(dict)``; call ``check(text, reference)``."""

    kind = "base"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.field: str | None = spec.get("field")
        self.normalize = bool(spec.get("normalize", False))

    @staticmethod
    def from_spec(spec: dict[str, Any]) -> Verifier:
        """The verifier a spec describes (UserError on an unknown type or missing option)."""
        kinds = {
            c.kind: c for c in (JsonVerifier, JsonSchemaVerifier, LabelVerifier, RegexVerifier, ExactMatchVerifier)
        }
        t = spec.get("type")
        if t not in kinds:
            raise UserError(f"unknown verifier type {t!r} (one of {', '.join(sorted(kinds))})")
        return kinds[t](spec)

    def _value(self, text: str | None) -> tuple[Any, str]:
        """The value checked: the field of the parsed answer, or the whole text when no field."""
        if self.field is None:
            return (text if text is not None else _MISSING), ""
        doc = parse_json(text)
        if doc is _MISSING:
            return _MISSING, "not valid JSON"
        v = get_field(doc, self.field)
        return v, ("" if v is not _MISSING else f"no field {self.field!r}")

    def _norm(self, v: Any) -> str:
        s = _as_text(v)
        return s.strip().casefold() if self.normalize else s

    def check(self, text: str | None, reference: str | None = None) -> VerifierResult:
        raise NotImplementedError


class JsonVerifier(Verifier):
    kind = "json"

    def check(self, text: str | None, reference: str | None = None) -> VerifierResult:
        return VerifierResult(True) if parse_json(text) is not _MISSING else VerifierResult(False, "not valid JSON")


class JsonSchemaVerifier(Verifier):
    kind = "json_schema"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        import jsonschema

        if "schema" not in spec:
            raise UserError("json_schema verifier needs a 'schema'")
        cls = jsonschema.validators.validator_for(spec["schema"])
        try:
            cls.check_schema(spec["schema"])
        except jsonschema.SchemaError as exc:
            raise UserError(f"invalid JSON schema: {exc.message}") from None
        self._validator = cls(spec["schema"])

    def check(self, text: str | None, reference: str | None = None) -> VerifierResult:
        doc = parse_json(text)
        if doc is _MISSING:
            return VerifierResult(False, "not valid JSON")
        err = next(iter(self._validator.iter_errors(doc)), None)
        if err is None:
            return VerifierResult(True)
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        return VerifierResult(False, f"schema: {where}: {err.message[:120]}")


class LabelVerifier(Verifier):
    kind = "label"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        allowed = spec.get("allowed")
        if not isinstance(allowed, list) or not allowed:
            raise UserError("label verifier needs a non-empty 'allowed' list")
        self.allowed = {self._norm(a) for a in allowed}

    def check(self, text: str | None, reference: str | None = None) -> VerifierResult:
        v, why = self._value(text)
        if v is _MISSING:
            return VerifierResult(False, why or "empty answer")
        if self._norm(v) in self.allowed:
            return VerifierResult(True)
        return VerifierResult(False, f"label {_as_text(v)[:60]!r} not allowed")


class RegexVerifier(Verifier):
    kind = "regex"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        try:
            self.pattern = re.compile(spec["pattern"], re.DOTALL)
        except (KeyError, re.error) as exc:
            raise UserError(f"regex verifier needs a valid 'pattern': {exc}") from None
        self.search = bool(spec.get("search", False))

    def check(self, text: str | None, reference: str | None = None) -> VerifierResult:
        v, why = self._value(text)
        if v is _MISSING:
            return VerifierResult(False, why or "empty answer")
        s = _as_text(v)
        m = self.pattern.search(s) if self.search else self.pattern.fullmatch(s)
        return VerifierResult(True) if m else VerifierResult(False, f"does not match /{self.pattern.pattern}/")


class ExactMatchVerifier(Verifier):
    kind = "exact_match"

    def check(self, text: str | None, reference: str | None = None) -> VerifierResult:
        if reference is None:
            return VerifierResult(True, "no reference")  # nothing to compare with: not a failure
        v, why = self._value(text)
        if v is _MISSING:
            return VerifierResult(False, why)
        ref: Any = reference
        if self.field is not None:
            rdoc = parse_json(reference)
            # A reference may be the bare label rather than a JSON document with the field.
            ref = get_field(rdoc, self.field) if rdoc is not _MISSING and isinstance(rdoc, dict | list) else reference
            if ref is _MISSING:
                ref = reference
        if self._norm(v) == self._norm(ref):
            return VerifierResult(True)
        return VerifierResult(False, f"{_as_text(v)[:40]!r} != reference {_as_text(ref)[:40]!r}")
