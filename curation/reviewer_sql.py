"""SQL shared by review, browsing and team review: how an event becomes a status, and each reviewer's own decision.

Kept apart (no imports) because ``curation.browse`` filters on it and ``curation.review`` / ``curation.team`` build
on ``browse``: one definition, no import cycle.
"""

from __future__ import annotations

# An event's status, for events that decide (an edit means the reviewer stands behind the corrected answer).
STATUS_OF = (
    "CASE action WHEN 'accept' THEN 'accepted' WHEN 'reject' THEN 'rejected' WHEN 'edit' THEN 'accepted' "
    "ELSE 'needs_review' END"
)
DECIDES = "action IN ('accept', 'reject', 'queue', 'edit')"

# Each reviewer's current verdict on each record: their last accept/reject/edit not undone (a queue is no verdict).
REVIEWER_DECISIONS = f"""
SELECT record_id, reviewer, arg_max({STATUS_OF}, event_id) AS decision, arg_max(reason, event_id) AS reason,
       max(created_at) AS decided_at
FROM review_events WHERE NOT undone AND action IN ('accept', 'reject', 'edit')
GROUP BY record_id, reviewer"""

# Records on which reviewers' verdicts differ (the conflicts queue).
CONFLICT_IDS = f"SELECT record_id FROM ({REVIEWER_DECISIONS}) GROUP BY record_id HAVING count(DISTINCT decision) > 1"

# Records assigned to a reviewer (parameter) that this reviewer has not decided yet.
PENDING_FOR_IDS = f"""
SELECT record_id FROM review_assignments WHERE reviewer = ?
EXCEPT SELECT record_id FROM ({REVIEWER_DECISIONS}) WHERE reviewer = ?"""
