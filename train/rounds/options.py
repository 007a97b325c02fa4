"""The parameters of a round and of its history, declared once: ``distill round next`` / ``distill round history``
take their flags from here and the evaluation screen's round form is built from the same declarations."""

from __future__ import annotations

from dataclasses import replace

from curation.errors import UserError
from curation.options import ChoiceOption, FloatOption, IntOption, OptionSet, TextOption
from curation.teacher.config import get_teacher, list_teachers
from curation.teacher.options import BUDGET, SYNTH
from curation.workspace import Workspace
from train.config import EVAL


def _round_teacher(ws: Workspace, name: str | None) -> str | None:
    """A named teacher must exist; blank stays blank (a new round takes the only one: ``only_teacher``; a
    continued round keeps its own)."""
    if not name:
        return None
    try:
        return get_teacher(ws, name).name
    except UserError as exc:
        raise ROUND["teacher"].error(str(exc)) from None


def only_teacher(ws: Workspace) -> str:
    """The teacher of a new round when none is named: the only configured one."""
    names = [t.name for t in list_teachers(ws)]
    if len(names) != 1:
        raise ROUND["teacher"].error(
            f"several teachers are configured ({', '.join(names)}): name one"
            if names
            else "no teacher is configured (distill teachers add, or `distill demo` for the offline one)"
        )
    return names[0]


# The weight rule, said once: the CLI help, the studio form and the plan's text all show this.
GAP_RULE = ("a failing slice's new inputs weigh 1 + (max weight - 1) x its gap to the teacher / the largest gap "
            "among the failing slices (a gap below 0 counts as 0), so the slice furthest behind weighs the max "
            "weight")  # fmt: skip
ROUND = OptionSet(
    "round next",
    (
        TextOption(
            name="teacher",
            metavar="NAME",
            help="the teacher that writes and answers the new inputs (default: the only configured teacher)",
            resolve=_round_teacher,
        ),
        IntOption(
            name="eval",
            metavar="EVAL",
            minimum=1,
            label="Start from eval",
            help="the tuned held-out evaluation to start from (default: the newest)",
        ),
        IntOption(
            name="n",
            flag="-n",
            default=50,
            minimum=1,
            required=True,
            label="New inputs per slice",
            help="new inputs asked for each failing slice",
        ),
        replace(SYNTH["examples"], help="failing prompts shown to the teacher per request"),
        ChoiceOption(
            name="weights",
            choices=("gap", "equal"),
            default="gap",
            required=True,
            help=f"gap: {GAP_RULE}; equal: weight 1",
        ),
        FloatOption(
            name="max_weight",
            default=3.0,
            minimum=1,
            required=True,
            help="weight of the new inputs of the slice with the largest gap (with --weights gap)",
        ),
        replace(
            BUDGET,
            help="never spend more than this on the teacher over the whole round (new inputs and their "
            "answers; a continued round counts what it spent before, and a budget given then replaces it)",
        ),
        TextOption(
            name="version",
            metavar="VERSION",
            help="name of the new dataset version (default: the previous version's name + -rN)",
        ),
        EVAL["max_new_tokens"],
        EVAL["gen_batch_size"],
    ),
)

# "Mostly": more than half by default. Below MIN_ERRORS errors with a reference a share says little, so no signal.
MIN_ERRORS = 5
HISTORY = OptionSet(
    "round history",
    (
        FloatOption(
            name="teacher_share",
            default=0.5,
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            required=True,
            help="stop signal when at least this share of a failing slice's remaining errors (items with a "
            f"reference, at least {MIN_ERRORS}) are items the teacher also gets wrong",
        ),
    ),
)
