"""The parameters of the teacher's operations (add a teacher, generate, batch submit, synth), declared once.

``distill teachers add`` / ``distill generate`` / ``distill batch submit`` / ``distill synth run`` take their flags
from here, and the studio's teacher screen builds its fields from the same declarations
(``studio.widgets.option_form``).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from curation.errors import UserError
from curation.option_lists import ListOption
from curation.options import ChoiceOption, FlagOption, FloatOption, IntOption, OptionSet, TextOption
from curation.teacher.config import DEFAULT_PARAMS, TeacherConfig, TeacherConfigError, get_teacher, validate
from curation.teacher.selection import Selection
from curation.workspace import Workspace


def _known_teacher(ws: Workspace, name: str) -> str:
    try:
        return get_teacher(ws, name).name
    except UserError as exc:
        raise TEACHER.error(str(exc)) from None


# No fixed choices: the configured teachers (the studio fills its list from the workspace).
TEACHER = ChoiceOption(name="teacher", positional=True, required=True, help="a configured teacher "
                       "(distill teachers list)", resolve=_known_teacher)  # fmt: skip
SELECTION = OptionSet(
    "selection",
    (
        FlagOption(
            name="all",
            label="All records",
            help="also records that already have a response (another teacher's answers side by side)",
        ),
        TextOption(name="slice", metavar="NAME", help="only this slice"),
        TextOption(name="where", metavar="SQL", help="only records matching this SQL condition on `records`"),
        ListOption(name="ids", item=int, repeat=False, metavar="ID,ID", label="Record ids", help="only these records"),
        IntOption(name="limit", minimum=0, help="at most N records"),
    ),
)
# The spending cap of a run: the request path reserves each request's worst case against it.
BUDGET = FloatOption(name="budget", minimum=0, metavar="USD", label="Budget (USD)",
                     help="never spend more than this in this run")  # fmt: skip
GENERATE = OptionSet(
    "generate",
    (
        TEACHER,
        *SELECTION,
        BUDGET,
        IntOption(name="concurrency", minimum=1, help="requests in flight (default: the teacher's own setting)"),
    ),
)
BATCH_SUBMIT = OptionSet(
    "batch submit",
    (TEACHER, *SELECTION, replace(BUDGET, help="submit only what this covers at worst (batch prices)")),
)
SYNTH = OptionSet(
    "synth run",
    (
        TEACHER,
        TextOption(name="slice", metavar="NAME", required=True, help="the slice to write new prompts for"),
        IntOption(name="n", flag="-n", label="New prompts", minimum=1, required=True, help="how many new prompts"),
        IntOption(
            name="examples", default=8, minimum=1, required=True, help="examples of the slice to show the teacher"
        ),
        BUDGET,
    ),
)
SYNTH_FULFIL = OptionSet(
    "synth fulfil", (TEACHER, replace(BUDGET, help="never spend more than this over all the requests"))
)


def selection_from_options(values: dict[str, Any]) -> Selection:
    """Parsed selection options -> the ``Selection`` generate and batch take."""
    return Selection(missing=not values["all"], slice=values.get("slice"), where=values.get("where"),
                     record_ids=values.get("ids"), limit=values.get("limit"))  # fmt: skip


def _param(text: str) -> tuple[str, Any]:
    """``K=V`` -> (K, V as JSON, or the text when it is not JSON)."""
    k, sep, v = text.partition("=")
    if not sep or not k.strip():
        raise UserError("takes K=V")
    try:
        return k.strip(), json.loads(v)
    except json.JSONDecodeError:
        return k.strip(), v


# ``K=V K=V``: a new pair starts at whitespace before ``name=``, so a JSON value may hold spaces and commas.
_PAIRS = re.compile(r"\s+(?=[A-Za-z_][A-Za-z0-9_]*=)")
TEACHERS_ADD = OptionSet(
    "teachers add",
    (
        TextOption(name="name", positional=True, required=True, help="a name for the teacher: letters, digits, . _ -"),
        TextOption(
            name="base_url",
            label="Base URL",
            metavar="URL",
            help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1",
        ),
        TextOption(name="model", metavar="MODEL", help="the pinned model version, e.g. gpt-4o-2024-08-06"),
        TextOption(
            name="key_env",
            label="Key variable",
            metavar="VAR",
            help="NAME of the environment variable holding the key (the key itself is never stored)",
        ),
        FlagOption(
            name="no_key",
            label="No key",
            help="the server needs no key (a local vLLM, Ollama, a `distill serve`, the demo's teacher)",
        ),
        IntOption(
            name="from_run",
            metavar="RUN",
            minimum=1,
            help="a trained student as teacher: the running `distill serve RUN` of this workspace (or "
            "--base-url of any keyless server holding it); no key, terms acknowledged (your own model)",
        ),
        FloatOption(
            name="price_in", default=0.0, minimum=0, metavar="USD", label="Price in", help="USD per 1M input tokens"
        ),
        FloatOption(
            name="price_out", default=0.0, minimum=0, metavar="USD", label="Price out", help="USD per 1M output tokens"
        ),
        FloatOption(name="batch_discount", default=0.5, minimum=0, maximum=1, help="Batch API price factor"),
        ListOption(
            name="param",
            item=_param,
            write_item=lambda kv: f"{kv[0]}={json.dumps(kv[1])}",
            split=_PAIRS.split,
            metavar="K=V",
            label="Sampling params",
            help=f"sampling parameters, K=V with a JSON value; defaults {json.dumps(DEFAULT_PARAMS)}",
        ),
        IntOption(name="concurrency", default=8, minimum=1, help="requests in flight"),
        FloatOption(
            name="timeout",
            default=60.0,
            minimum=0,
            exclusive_minimum=True,
            metavar="S",
            help="per-request timeout in seconds",
        ),
        IntOption(name="retries", default=6, minimum=0, help="retries per request"),
        FlagOption(
            name="ack_terms",
            label="Terms allow training",
            help="confirm the provider's terms allow training on its outputs (required to generate)",
        ),
        FlagOption(name="replace", label="Replace", help="update an existing teacher of that name"),
    ),
)
# TeacherConfig attribute -> the option a bad value of it is reported on.
_FIELD_OPTION = {"name": "name", "base_url": "base_url", "model": "model", "api_key_env": "key_env",
                 "params": "param", "price_in_per_m": "price_in", "price_out_per_m": "price_out",
                 "batch_discount": "batch_discount", "concurrency": "concurrency", "timeout_s": "timeout",
                 "max_retries": "retries"}  # fmt: skip


def teacher_from_options(values: dict[str, Any], served: tuple[str, str] | None = None) -> TeacherConfig:
    """Parsed ``TEACHERS_ADD`` values -> a checked ``TeacherConfig``; a bad value raises its option's error.

    ``served`` is (base URL, model) of ``from_run``'s running student (the CLI finds it; the studio has no such
    field): a model of one's own needs no key and no provider's terms.
    """
    ways = [TEACHERS_ADD[n] for n in ("key_env", "no_key", "from_run") if values.get(n)]
    if not ways:
        raise TEACHERS_ADD["key_env"].error("give the variable holding the key, or No key (--no-key) for a server "
                                            "that needs none, or From run (--from-run RUN) for a served student")  # fmt: skip
    if len(ways) > 1:
        raise ways[1].error(f"give only one of Key variable, No key and From run (also given: {ways[0].label})")
    base_url, model, ack = values.get("base_url"), values.get("model"), values["ack_terms"]
    if values.get("from_run") is not None:
        if served is None:
            raise TEACHERS_ADD["from_run"].error("needs the running `distill serve RUN` (use the CLI)")
        base_url, model, ack = served[0], served[1], True
    for name, value in (("base_url", base_url), ("model", model)):
        if not value:
            raise TEACHERS_ADD[name].error("a value is required (or --from-run RUN for a served student)")
    params = dict(DEFAULT_PARAMS)
    params.update(values.get("param") or [])
    cfg = TeacherConfig(
        name=values["name"], base_url=base_url or "", model=model or "", api_key_env=values.get("key_env") or "",
        params=params, price_in_per_m=values["price_in"], price_out_per_m=values["price_out"],
        batch_discount=values["batch_discount"], terms_ack=bool(ack), concurrency=values["concurrency"],
        timeout_s=values["timeout"], max_retries=values["retries"],
    )  # fmt: skip
    try:
        validate(cfg)
    except TeacherConfigError as exc:
        raise TEACHERS_ADD[_FIELD_OPTION[exc.field]].error(str(exc)) from None
    return cfg
