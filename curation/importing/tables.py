"""Tables (CSV, Parquet, JSON lines of flat objects) imported with a column mapping."""

from __future__ import annotations

from curation.importing.sql import quote_ident, sql_str

MAPPING_KEYS = ("prompt", "response", "slice", "reference", "system")


def table_transform(
    columns: list[str], mapping: dict[str, str], system_prompt: str | None, metadata_sql: str | None = None
) -> str:
    """Map table columns to record columns over ``src`` (``line_no`` + the table's columns).

    Unmapped columns become the record's metadata object, so nothing in the row is lost.
    """
    prompt = mapping["prompt"]
    mapped = {mapping[k] for k in MAPPING_KEYS if k in mapping}
    others = [c for c in columns if c not in mapped and c != "line_no"]
    meta = "json_object(" + ", ".join(f"{sql_str(c)}, {quote_ident(c)}" for c in others) + ")" if others else "NULL"
    if metadata_sql is not None:
        meta = metadata_sql

    def col(key: str) -> str:
        return f"nullif(trim(CAST({quote_ident(mapping[key])} AS VARCHAR)), '')" if key in mapping else "NULL"

    system = col("system") if "system" in mapping else (sql_str(system_prompt) if system_prompt else "NULL")
    messages = (
        f"CASE WHEN {system} IS NULL THEN json_array(json_object('role', 'user', 'content', {col('prompt')})) "
        f"ELSE json_array(json_object('role', 'system', 'content', {system}), "
        f"json_object('role', 'user', 'content', {col('prompt')})) END"
    )
    return f"""
    SELECT line_no,
        CASE WHEN {col("prompt")} IS NULL THEN {sql_str(prompt)} END AS err_field,
        CASE WHEN {col("prompt")} IS NULL THEN 'empty prompt' END AS err_reason,
        {messages} AS messages,
        {col("prompt")} AS prompt,
        {col("response")} AS response,
        CAST(NULL AS JSON) AS response_logprobs, NULL AS teacher_model, NULL AS finish_reason,
        coalesce({col("slice")}, '(none)') AS slice,
        {col("reference")} AS reference,
        {meta} AS metadata,
        CAST(NULL AS JSON) AS request_params, NULL::INTEGER AS prompt_tokens, NULL::INTEGER AS completion_tokens,
        NULL::DOUBLE AS latency_ms, NULL::TIMESTAMP AS logged_at
    FROM src
    """


def check_mapping(columns: list[str], mapping: dict[str, str], source: str) -> None:
    """Refuse a mapping that names columns the table lacks, or has no prompt column."""
    from curation.errors import UserError

    unknown = {k: v for k, v in mapping.items() if v not in columns}
    if unknown:
        k, v = next(iter(unknown.items()))
        raise UserError(f"{source}: no column {v!r} (mapped as {k}); columns are: {', '.join(columns)}")
    if "prompt" not in mapping:
        raise UserError(f"{source}: which column holds the prompt? pass --prompt-col (columns: {', '.join(columns)})")
