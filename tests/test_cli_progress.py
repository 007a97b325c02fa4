"""The CLI's progress line: each stage shows its own elapsed time, and a new stage is shown at once."""

from __future__ import annotations

import pytest

from curation.progress import Progress
from distill import output


def test_a_new_stage_restarts_the_clock_and_prints_at_once(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    now = [100.0]
    monkeypatch.setattr(output.time, "monotonic", lambda: now[0])
    p = output.CliProgress(every_s=2.0)
    p(Progress("train", 1, 10))
    now[0] += 400.0  # a long training run
    p(Progress("train", 10, 10))
    now[0] += 0.5  # less than every_s later: the evaluation's first line is still shown
    p(Progress("generate", 0, 60))
    lines = capsys.readouterr().err.splitlines()
    assert lines[-2].startswith("train [") and lines[-2].endswith("(400.0s)")
    assert lines[-1].startswith("generate [") and lines[-1].endswith("(0.0s)")
