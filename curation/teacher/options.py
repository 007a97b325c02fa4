"""The parameters of the teacher's operations (generate, batch submit, synth), declared once.

``distill generate`` / ``distill batch submit`` / ``distill synth run`` take their flags from here, and the studio's
teacher screen builds its fields from the same declarations (``studio.widgets.option_form``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from curation.errors import UserError
from curation.option_lists import ListOption
from curation.options import ChoiceOption, FlagOption, FloatOption, IntOption, OptionSet, TextOption
from curation.teacher.config import get_teacher
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
