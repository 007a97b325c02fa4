"""Rounds: from an evaluation's failing slices back to the data, and a new evaluation.

A round takes the newest tuned held-out evaluation, the slices that fail their bar and the student's wrong answers
there; asks the teacher for new inputs in the style of those failures (synth seeded with the failing prompts) and
answers them (generate); applies the version's filters and dedupe and keeps every near-duplicate of a held-out
prompt out; makes the next dataset version (the previous one plus the new records, weighted by the slice's gap);
trains with the previous run's config and evaluates. Modules: ``options`` (ROUND, HISTORY), ``plan`` (what a round
would do and cost), ``store`` (the ``rounds`` and ``round_steps`` tables), ``steps`` (each step, calling the
existing operations), ``run`` (the chain: resumable, cancellable, one teacher budget), ``history`` (every round per
slice with intervals, deltas, cost, and the stop signal; ``round_summary`` for the checklist).
"""
