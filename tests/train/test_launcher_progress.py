"""`distill train` and the studio are never silent: between steps the launcher reports what the worker is doing
(loading the student, the held-out loss pass before step 1, which takes minutes for SmolLM2 on a CPU)."""

from __future__ import annotations

from curation.progress import Progress
from train import events as ev
from train.launcher import _report


def test_loading_and_heldout_passes_are_reported_between_steps() -> None:
    seen: list[Progress] = []
    stream = [
        (ev.PhaseStarted("load"), None),
        (ev.PhaseStarted("eval", 0), 20),
        (ev.EvalLogged(step=0, eval_loss=2.5, best=True), 20),
        (ev.StepLogged(step=1, loss=2.4, lr=1e-3, tokens_per_s=900.0, eta_s=30.0, epoch=0.1, total_steps=20), 20),
    ]
    for event, total in stream:
        _report(seen.append, event, total)
    assert [(p.done, p.total, p.detail) for p in seen] == [
        (0, None, "loading the student"),
        (0, 20, "held-out loss at step 0"),
        (0, 20, "held-out loss 2.5000"),
        (1, 20, "loss 2.400  900 tok/s  eta 30s"),
    ]
