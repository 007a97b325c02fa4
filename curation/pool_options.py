"""Options every pool-based operation shares: which slicing and which held-out split to respect.

Declared once; their workspace checks run in the CLI and the studio alike (an unknown split or slicing is an
error in both, never silently ignored).
"""

from __future__ import annotations

from curation import effective
from curation.errors import UserError
from curation.options import TextOption
from curation.pool import DEFAULT_SPLIT, split_exists
from curation.workspace import Workspace

NO_SPLIT = "-"


def resolve_slicing(ws: Workspace, name: str | None) -> str | None:
    """Blank = the slicing chosen by `distill slices use` (or records' own slice); a named one must exist
    (``curation.effective.resolve_slicing``, its error told against this option)."""
    try:
        return effective.resolve_slicing(ws, name)
    except UserError as exc:
        raise SLICING.error(str(exc)) from None


def resolve_split(ws: Workspace, name: str | None) -> str | None:
    """Blank = the 'heldout' split when one was frozen; '-' = no held-out side; a named one must exist."""
    if name == NO_SPLIT:
        return None
    if not name:
        return DEFAULT_SPLIT if split_exists(ws, DEFAULT_SPLIT) else None
    if not split_exists(ws, name):
        raise SPLIT.error(f"no split named {name!r} (see `distill split list`)")
    return name


SLICING = TextOption(
    name="slicing",
    metavar="NAME",
    help="slicing to use (default: the one chosen by `distill slices use`)",
    resolve=resolve_slicing,
)
SPLIT = TextOption(
    name="split",
    metavar="NAME",
    help=f"held-out split to respect (default: {DEFAULT_SPLIT!r} if frozen; '{NO_SPLIT}': none)",
    shortcuts={"--no-split": (NO_SPLIT, "ignore held-out splits (no held-out side)")},
    resolve=resolve_split,
)
