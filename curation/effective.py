"""What a record is *now*: the one definition every reader of records goes through.

A record's effective state folds the review and the active slicing into the imported row:

- ``slice``: the reviewer's relabel (``reviews.slice_override``) > the slicing's assignment
  (``slicing_assignments``, under the active slicing or the one named) > ``records.slice``;
  ``original_slice`` is the slice before the reviewer's relabel;
- ``response``: the reviewer's last edit (``reviews.edited_response``) > ``records.response``;
  ``original_response`` is the teacher's, ``edited`` says whether a reviewer changed it;
- ``status``: ``unreviewed | needs_review | accepted | rejected`` (``reviews.status``, unreviewed without a row),
  with ``reason``, ``reviewer``, ``reviewed_at``;
- ``confidence``: exp(mean token logprob) of the teacher's response, 0..1;
- ``seen_at``: when production saw it (``logged_at``), else when it was imported;
- every other ``records`` column under its own name.

Browse and review (and users' SQL WHERE clauses), the curation pool and its operations, teacher selection, synth
examples, the overview and ``distill stats`` all read this relation; none restates a part of it.
"""

from __future__ import annotations

import re
from typing import Any

from curation.errors import UserError
from curation.workspace import Workspace

ACTIVE_SLICING_SETTING = "curation.slicing"

STATUSES = ("unreviewed", "needs_review", "accepted", "rejected")

# Every records column passes through, but response and slice, which become effective values.
_COLUMNS = """
       r.* EXCLUDE (response, slice), r.response AS original_response, coalesce(v.edited_response, r.response) AS response,
       v.edited_response IS NOT NULL AS edited, exp(r.mean_logprob) AS confidence,
       coalesce(v.status, 'unreviewed') AS status, v.reason, v.reviewer, v.updated_at AS reviewed_at,
       coalesce(r.logged_at, r.imported_at) AS seen_at"""

# Any text naming a slice column (slice, original_slice) needs the slicing's join.
_MENTIONS_SLICE = re.compile("slice", re.IGNORECASE)


def active_slicing(ws: Workspace) -> str | None:
    """The slicing chosen with ``distill slices use`` (None = records' own slice column)."""
    return ws.get_setting(ACTIVE_SLICING_SETTING)


def slicing_exists(ws: Workspace, name: str) -> bool:
    """Whether a slicing of this name is stored."""
    return bool(ws.scalar("SELECT count(*) FROM slicings WHERE name = ?", [name]))


def resolve_slicing(ws: Workspace, slicing: str | None) -> str | None:
    """``slicing`` when named (it must exist), else the active one (None = records' own slice column)."""
    if not slicing:
        return active_slicing(ws)
    if not slicing_exists(ws, slicing):
        raise UserError(f"no slicing named {slicing!r} (see `distill slices list`)")
    return slicing


def effective_sql(ws: Workspace, slicing: str | None = None, *, uses: str | None = None) -> tuple[str, list[Any]]:
    """SQL (and its parameters) for a relation of every record as it is now; see the module docstring.

    ``slicing``: the slicing whose assignments give the slice (default: the active one). ``uses``: the text of the
    query that reads the relation; when it never mentions a slice column, the slicing's join is left out and so are
    the slice columns (a query that then reads them fails to bind instead of seeing the wrong slice). On the 1M-record
    bench workspace (2 cores, lightly loaded) the join took a count from 2 to 47 ms and the last page from 12 to 82 ms;
    a slice-filtered count, which needs it, from 4 to 93 ms.
    """
    slicing = resolve_slicing(ws, slicing)
    join = ""
    params: list[Any] = []
    if not slicing:
        slices = ", coalesce(v.slice_override, r.slice) AS slice, r.slice AS original_slice"
    elif uses is None or _MENTIONS_SLICE.search(uses):
        join = "LEFT JOIN slicing_assignments sa ON sa.record_id = r.record_id AND sa.slicing = ?"
        params.append(slicing)
        slices = (
            ", coalesce(v.slice_override, sa.slice, r.slice) AS slice, coalesce(sa.slice, r.slice) AS original_slice"
        )
    else:
        slices = ""
    sql = f"""
SELECT {_COLUMNS}{slices}
FROM records r LEFT JOIN reviews v ON v.record_id = r.record_id {join}
"""
    return sql, params
