"""SQL that turns parsed lines into record columns, one transform per format.

Every transform reads a relation ``src`` with ``line_no`` and the format's top-level fields (JSON typed),
and yields the columns in ``PARSED_COLUMNS``: a record when ``err_reason`` is NULL, a quarantine entry otherwise.
Doing this in SQL keeps imports vectorised: DuckDB parses each line once and checks every field in bulk.
"""

from __future__ import annotations

import json
import re
from typing import Any

PARSED_COLUMNS = (
    "line_no", "err_field", "err_reason", "messages", "prompt", "response", "response_logprobs", "teacher_model",
    "finish_reason", "slice", "reference", "metadata", "request_params", "prompt_tokens", "completion_tokens",
    "latency_ms", "logged_at",
)  # fmt: skip

# Top-level fields read from each JSON-lines format (all typed JSON so any value parses; the transform checks types).
LOG_KEYS = ("request", "response", "metadata", "timestamp", "started_at", "created_at", "latency_ms", "reference")
FINETUNE_KEYS = ("messages", "metadata", "reference")

# The response fields the transform needs, typed. The fast path reads ``response`` with this type (``read_json``
# columns), the careful path converts its JSON with this shape (``json_transform``): both run DuckDB's same JSON
# conversion, so both paths give the same records. Text-only values are VARCHAR (a JSON leaf would be written out
# by the reader and parsed again for every row); values whose JSON type is checked stay JSON.
RESPONSE_FIELDS: dict[str, Any] = {
    "model": "VARCHAR",
    "created": "VARCHAR",
    "error": "JSON",
    "usage": {"prompt_tokens": "VARCHAR", "completion_tokens": "VARCHAR"},
    "choices": [
        {
            "finish_reason": "VARCHAR",
            "message": {"content": "JSON", "tool_calls": "JSON"},
            "logprobs": {"content": "JSON"},
        }
    ],
}


def _duckdb_type(shape: Any) -> str:
    """The DuckDB type of a json_transform shape."""
    if isinstance(shape, dict):
        return "STRUCT(" + ", ".join(f"{k} {_duckdb_type(v)}" for k, v in shape.items()) + ")"
    if isinstance(shape, list):
        return _duckdb_type(shape[0]) + "[]"
    return str(shape)


RESPONSE_STRUCT = _duckdb_type(RESPONSE_FIELDS)
RESPONSE_SHAPE = json.dumps(RESPONSE_FIELDS, separators=(",", ":"))


def _response_values(rs: str) -> str:
    """The values the transform reads from a ``RESPONSE_STRUCT`` ``rs``, as columns r1..r10 (a list per row costs
    more to build than the values themselves); r10 only has to tell "no choices" from "some"."""
    c = f"{rs}.choices[1]"
    return (
        f"{c}.message.content AS r1, {c}.logprobs.content AS r2, {rs}.model AS r3, {c}.finish_reason AS r4, "
        f"{rs}.usage.prompt_tokens AS r5, {rs}.usage.completion_tokens AS r6, {c}.message.tool_calls AS r7, "
        f"{rs}.created AS r8, {rs}.error AS r9, "
        f"CASE WHEN {rs}.choices IS NULL THEN NULL WHEN len({rs}.choices) = 0 THEN '[]'::JSON ELSE '[0]'::JSON END "
        "AS r10"
    )


# Top-level log fields that are only ever read as text (then cast): the fast path may read them as VARCHAR.
TEXT_LOG_KEYS = ("timestamp", "started_at", "created_at", "latency_ms")


_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_ident(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def json_path(parts: list[str]) -> str:
    """A JSONPath for nested keys, quoting keys that are not plain identifiers."""
    out = "$"
    for p in parts:
        out += "." + (p if _SAFE_KEY.match(p) else '"' + p.replace('"', '\\"') + '"')
    return out


def field_value_sql(path: str, columns: tuple[str, ...]) -> str:
    """SQL for the string value at dotted ``path`` ("metadata.product_area") over top-level JSON columns.

    Strings come out unquoted; numbers, booleans and objects as their JSON text; absent as NULL.
    """
    head, *rest = path.split(".")
    if head not in columns:
        return "NULL"
    return f"json_extract_string({quote_ident(head)}, {sql_str(json_path(rest))})"


def error_text_sql(err: str) -> str:
    """The text that names an API error object ``err`` in a quarantine reason: its ``code`` when it has one
    (``context_length_exceeded``), else its message. Messages often carry per-request numbers ("your messages
    resulted in 9,013 tokens"); a code is the same for every line that failed the same way, so reasons group."""
    return (
        f"coalesce(json_extract_string({err}, '$.code'), json_extract_string({err}, '$.message'), "
        f"CAST({err} AS VARCHAR))"
    )


def top_level_keys(keys: tuple[str, ...], *paths: str | None) -> tuple[str, ...]:
    """``keys`` plus the first segment of each user path (so ``--slice-field tier`` reads top-level ``tier``)."""
    extra = [p.split(".")[0] for p in paths if p]
    return tuple(dict.fromkeys([*keys, *extra]))


def _err(conditions: list[tuple[str, str, str]]) -> str:
    """A CASE yielding 'field<US>reason' for the first failing condition, else NULL."""
    whens = "\n".join(f"WHEN {cond} THEN {sql_str(field)} || chr(31) || {reason}" for cond, field, reason in conditions)
    return f"CASE {whens} ELSE NULL END"


def _jtype(expr: str) -> str:
    """The JSON type of a value from its first character.

    Values from read_json and json_extract are minified, so this is exact, and it avoids json_type(), which
    re-parses the whole value (the response with its token logprobs) on every call.
    """
    return (
        f"CASE left(CAST({expr} AS VARCHAR), 1) WHEN '{{' THEN 'OBJECT' WHEN '[' THEN 'ARRAY' WHEN '\"' THEN 'VARCHAR' "
        f"WHEN 't' THEN 'BOOLEAN' WHEN 'f' THEN 'BOOLEAN' WHEN 'n' THEN 'NULL' WHEN '' THEN 'NULL' "
        f"ELSE CASE WHEN {expr} IS NULL THEN 'NULL' ELSE 'NUMBER' END END"
    )


# The last user message's text. Most logs end with the user turn, so take the last message directly and only
# search the list (a lambda per row, slower) when the conversation ends otherwise. No subquery: DuckDB would
# decorrelate it into a join over every row; a CASE evaluates the slow branch only for the rows that need it.
_LAST_USER = (
    "coalesce(list_filter(TRY_CAST(messages AS JSON[]), lambda x: json_extract_string(x, '$.role') = 'user')[-1], "
    "TRY_CAST(messages AS JSON[])[-1])"
)
PROMPT_FROM_MESSAGES = f"""(
    CASE WHEN _last.role = 'user' AND prefix(CAST(_last.content AS VARCHAR), '"')
        THEN json_extract_string(_last.content, '$')
    WHEN json_type({_LAST_USER}, '$.content') = 'VARCHAR' THEN json_extract_string({_LAST_USER}, '$.content')
    WHEN json_type({_LAST_USER}, '$.content') = 'ARRAY'
        THEN array_to_string(json_extract_string({_LAST_USER}, '$.content[*].text'), chr(10))
    END
)"""

# Each message's role and content, from one parse of the conversation: the checks (how many messages, does each
# have a role) and the prompt (the last message) read this list instead of re-parsing the JSON three times. The
# role as text (JSON null gives NULL, any other value its text); the content as JSON, since its type matters.
MESSAGE_SHAPE = """'[{"role":"VARCHAR","content":"JSON"}]'"""


def parsed_messages(expr: str) -> str:
    """SQL for the role/content list of a JSON conversation (NULL when it is not an array)."""
    return f"json_transform({expr}, {MESSAGE_SHAPE})"


def _finish(inner: str, last_sql: str) -> str:
    """Common outer select: split the error, derive the prompt, clean up slice and reference.

    ``inner`` yields the record columns plus ``_slice`` and ``_reference``, computed there from the source's own
    columns (the record columns reuse some names, such as ``response`` for the answer text). ``last_sql`` is the
    last message of ``messages`` as a ``MESSAGE_SHAPE`` element (role and content).
    """
    return f"""
    SELECT line_no,
        CASE WHEN err IS NOT NULL THEN split_part(err, chr(31), 1) END AS err_field,
        CASE WHEN err IS NOT NULL THEN substr(err, strpos(err, chr(31)) + 1) END AS err_reason,
        messages,
        CASE WHEN err IS NULL THEN {PROMPT_FROM_MESSAGES} END AS prompt,
        response, response_logprobs, teacher_model, finish_reason,
        coalesce(nullif(trim(_slice), ''), '(none)') AS slice,
        _reference AS reference,
        metadata, request_params, prompt_tokens, completion_tokens, latency_ms, logged_at
    FROM (SELECT *, {last_sql} AS _last FROM ({inner}))
    """


def _messages_checks(expr: str, field: str, parsed: str) -> list[tuple[str, str, str]]:
    """Checks of a conversation ``expr``; ``parsed`` is its ``parsed_messages`` list."""
    return [
        (f"{expr} IS NULL", field, "'missing field'"),
        (f"{_jtype(expr)} <> 'ARRAY'", field, f"'expected an array of messages, got ' || {_jtype(expr)}"),
        (f"len({parsed}) = 0", field, "'no messages'"),
        (
            f"list_count(list_transform({parsed}, lambda m: m.role)) <> len({parsed})",
            field,
            "'a message has no \"role\"'",
        ),
    ]


def log_transform(
    columns: tuple[str, ...],
    slice_field: str | None,
    reference_field: str | None,
    require_response: bool = True,
    typed_response: bool = False,
    text_keys: frozenset[str] = frozenset(),
) -> str:
    """Logging-proxy records ``{"request", "response", "metadata", timestamps, latency}``; also Batch joins.

    With ``require_response=False`` (a Batch input file alone) a missing response makes a prompt-only record.
    With ``typed_response`` the source's ``response`` is a ``RESPONSE_STRUCT`` (the fast path), else JSON.
    ``text_keys`` (some of ``TEXT_LOG_KEYS``) are VARCHAR in the source (the fast path), the rest JSON.
    """
    has_pre = "pre_err" in columns
    checks: list[tuple[str, str, str]] = []
    if has_pre:
        checks.append(("pre_err IS NOT NULL", "custom_id", "pre_err"))
    checks += [
        ("request IS NULL", "request", "'missing field'"),
        (f"{_jtype('request')} <> 'OBJECT'", "request", f"'expected an object, got ' || {_jtype('request')}"),
        *_messages_checks("messages", "request.messages", "_m"),
    ]
    if require_response:
        checks.append(("response IS NULL", "response", "'missing field'"))
    checks += [
        (
            f"response IS NOT NULL AND {_jtype('response')} <> 'OBJECT'",
            "response",
            f"'expected an object, got ' || {_jtype('response')}",
        ),
        (
            f"{_jtype('r9')} NOT IN ('NULL')",
            "response.error",
            "'the teacher call failed: ' || " + error_text_sql("r9"),
        ),
        (
            f"response IS NOT NULL AND ({_jtype('r10')} <> 'ARRAY' OR json_array_length(r10) = 0)",
            "response.choices",
            "'missing or empty'",
        ),
        (
            f"response IS NOT NULL AND {_jtype('r1')} = 'NULL' AND {_jtype('r7')} = 'NULL'",
            "response.choices[0].message.content",
            "'missing'",
        ),
        (
            f"{_jtype('r1')} NOT IN ('VARCHAR', 'NULL')",
            "response.choices[0].message.content",
            f"'expected a string, got ' || {_jtype('r1')}",
        ),
        (
            f"metadata IS NOT NULL AND {_jtype('metadata')} NOT IN ('OBJECT', 'NULL')",
            "metadata",
            f"'expected an object, got ' || {_jtype('metadata')}",
        ),
    ]

    def text(c: str) -> str:  # a JSON scalar's text, as a VARCHAR read of it gives (the casts below agree on both)
        return quote_ident(c) if c in text_keys else f"json_extract_string({quote_ident(c)}, '$')"

    time_cols = [c for c in ("timestamp", "started_at", "created_at") if c in columns]
    ts = ", ".join(f"TRY_CAST({text(c)} AS TIMESTAMPTZ)" for c in time_cols)
    logged_at = f"coalesce({ts + ', ' if ts else ''}to_timestamp(TRY_CAST(r8 AS BIGINT)))"
    latency = f"TRY_CAST({text('latency_ms')} AS DOUBLE)" if "latency_ms" in columns else "NULL"
    if typed_response:
        # Only the response's presence is checked from here on; an object is all a typed read can yield.
        others = ", ".join(quote_ident(c) for c in columns if c != "response")
        source = f"""SELECT {others}, CASE WHEN response IS NOT NULL THEN '{{}}'::JSON END AS response,
            json_extract(request, '$.messages') AS messages, {_response_values("response")} FROM src"""
    else:
        source = f"""SELECT * EXCLUDE (_rs), {_response_values("_rs")} FROM (
            SELECT *, json_extract(request, '$.messages') AS messages,
                json_transform(response, {sql_str(RESPONSE_SHAPE)}) AS _rs
            FROM src)"""
    source = f"SELECT *, {parsed_messages('messages')} AS _m FROM ({source})"
    inner = f"""
    SELECT line_no, {_err(checks)} AS err,
        messages, _m,
        CASE WHEN {_jtype("r1")} = 'VARCHAR' THEN json_extract_string(r1, '$')
             WHEN {_jtype("r7")} <> 'NULL' THEN CAST(r7 AS VARCHAR) END AS response,
        CASE WHEN {_jtype("r2")} = 'ARRAY' THEN r2 END AS response_logprobs,
        coalesce(r3, json_extract_string(request, '$.model')) AS teacher_model,
        r4 AS finish_reason,
        CASE WHEN {_jtype("metadata")} = 'OBJECT' THEN metadata END AS metadata,
        CASE WHEN {_jtype("request")} = 'OBJECT' THEN json_merge_patch(request, '{{"messages":null}}') END
            AS request_params,
        TRY_CAST(r5 AS INTEGER) AS prompt_tokens,
        TRY_CAST(r6 AS INTEGER) AS completion_tokens,
        {latency} AS latency_ms,
        CAST({logged_at} AS TIMESTAMP) AS logged_at,
        {_field_columns(slice_field, reference_field, columns)}
    FROM ({source})
    """
    return _finish(inner, "_m[-1]")


def finetune_transform(columns: tuple[str, ...], slice_field: str | None, reference_field: str | None) -> str:
    """Fine-tuning JSONL ``{"messages": [...]}``: the last assistant message is the teacher output."""
    checks = [
        *_messages_checks("all_messages", "messages", "_m"),
        (
            f"asst IS NOT NULL AND {_jtype('asst_msg')} <> 'OBJECT'",
            "messages",
            "'the assistant message is not an object'",
        ),
        (
            "asst IS NOT NULL AND json_type(asst_msg, '$.content') NOT IN ('VARCHAR')",
            "messages[-1].content",
            "'the assistant message has no text content'",
        ),
        (
            f"metadata IS NOT NULL AND {_jtype('metadata')} NOT IN ('OBJECT', 'NULL')",
            "metadata",
            f"'expected an object, got ' || {_jtype('metadata')}",
        ),
        ("asst = 1", "messages", "'the conversation starts with the assistant: no prompt'"),
    ]
    inner = f"""
    SELECT line_no, {_err(checks)} AS err,
        CASE WHEN asst IS NULL THEN all_messages ELSE to_json(list_slice(msgs, 1, asst - 1)) END AS messages,
        json_extract_string(asst_msg, '$.content') AS response,
        CAST(NULL AS JSON) AS response_logprobs, NULL AS teacher_model, NULL AS finish_reason,
        CASE WHEN {_jtype("metadata")} = 'OBJECT' THEN metadata END AS metadata,
        CAST(NULL AS JSON) AS request_params, NULL::INTEGER AS prompt_tokens, NULL::INTEGER AS completion_tokens,
        NULL::DOUBLE AS latency_ms, NULL::TIMESTAMP AS logged_at,
        {_field_columns(slice_field, reference_field, columns)}
    FROM (
        SELECT *, msgs[asst] AS asst_msg FROM (
            SELECT *, CASE WHEN list_position(list_reverse(roles), 'assistant') IS NOT NULL
                THEN len(roles) - list_position(list_reverse(roles), 'assistant') + 1 END AS asst
            FROM (
                SELECT *, messages AS all_messages, {parsed_messages("messages")} AS _m,
                    CASE WHEN {_jtype("messages")} = 'ARRAY' THEN CAST(messages AS JSON[]) END AS msgs,
                    CASE WHEN {_jtype("messages")} = 'ARRAY'
                        THEN CAST(json_extract_string(messages, '$[*].role') AS VARCHAR[]) END AS roles
                FROM src
            )
        )
    )
    """
    return _finish(inner, parsed_messages("messages") + "[-1]")


def _field_columns(slice_field: str | None, reference_field: str | None, columns: tuple[str, ...]) -> str:
    """``_slice`` and ``_reference`` (see ``_finish``) from the user's field paths over the source columns."""
    slice_sql, reference_sql = (field_value_sql(f, columns) if f else "NULL" for f in (slice_field, reference_field))
    return f"{slice_sql} AS _slice, {reference_sql} AS _reference"
