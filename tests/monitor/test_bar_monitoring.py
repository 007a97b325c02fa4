"""Monitoring thresholds on the quality bar: stored, defaulted, validated, set from the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curation.errors import UserError
from curation.workspace import Workspace
from train.bars import DEFAULT_MAX_DRIFT_AUC, DEFAULT_MAX_FALLBACK_RATE, QualityBar, get_bar, set_bar


def _bar(**kw) -> QualityBar:  # type: ignore[no-untyped-def]
    return QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.8, **kw)


def test_monitoring_thresholds_round_trip_and_default(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        set_bar(ws, _bar(slice_bars={"billing": 0.9}))
        bar = get_bar(ws)
        assert bar is not None
        assert (bar.max_drift_auc, bar.max_fallback_rate, bar.min_agreement) == (
            DEFAULT_MAX_DRIFT_AUC, DEFAULT_MAX_FALLBACK_RATE, None)  # fmt: skip
        assert bar.agreement_bar("billing") == 0.9 and bar.agreement_bar("other") == 0.8
        set_bar(ws, _bar(max_drift_auc=0.7, max_fallback_rate=0.1, min_agreement=0.85))
        bar = get_bar(ws)
        assert bar is not None and (bar.max_drift_auc, bar.max_fallback_rate, bar.agreement_bar("x")) == (
            0.7,
            0.1,
            0.85,
        )
        # a bar stored before the columns existed reads the defaults
        with ws.transaction() as cur:
            cur.execute("UPDATE quality_bars SET max_drift_auc = NULL, max_fallback_rate = NULL")
        bar = get_bar(ws)
        assert bar is not None and (bar.max_drift_auc, bar.max_fallback_rate) == (
            DEFAULT_MAX_DRIFT_AUC, DEFAULT_MAX_FALLBACK_RATE)  # fmt: skip


@pytest.mark.parametrize("kw", [{"max_drift_auc": 0.4}, {"max_fallback_rate": 1.5}, {"min_agreement": -0.1}])
def test_bad_monitoring_thresholds_are_refused(kw: dict) -> None:
    with pytest.raises(UserError):
        _bar(**kw).validate()


def test_bar_set_monitoring_flags(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws.duckdb")
    Workspace.open(ws).close()

    def distill(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "distill", *args, "-w", ws], capture_output=True, text=True)

    r = distill("bar", "set", "--task", "t", "--metric", "exact:intent", "--threshold", "0.8", "--max-drift-auc",
                "0.65", "--max-fallback-rate", "0.3")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "drift AUC <= 0.65" in r.stdout and "agreement >= each slice's bar" in r.stdout
    r = distill("bar", "set", "--min-agreement", "0.9", "--json")
    doc = json.loads(r.stdout)
    assert (doc["max_drift_auc"], doc["max_fallback_rate"], doc["min_agreement"]) == (0.65, 0.3, 0.9)
    r = distill("bar", "set", "--max-drift-auc", "0.3")
    assert r.returncode == 1 and "max drift AUC" in r.stderr


def test_studio_bar_editor_keeps_monitoring_thresholds() -> None:
    from studio.screens.bar_editor import bar_from_fields, bar_to_fields

    bar = bar_from_fields(bar_to_fields(_bar(max_drift_auc=0.7, max_fallback_rate=0.1, min_agreement=0.85)))
    assert (bar.max_drift_auc, bar.max_fallback_rate, bar.min_agreement) == (0.7, 0.1, 0.85)
    fields = {**bar_to_fields(bar), "bar-max-drift-auc": "", "bar-max-fallback-rate": "", "bar-min-agreement": ""}
    bar = bar_from_fields(fields)
    assert (bar.max_drift_auc, bar.max_fallback_rate, bar.min_agreement) == (
        DEFAULT_MAX_DRIFT_AUC, DEFAULT_MAX_FALLBACK_RATE, None)  # fmt: skip
