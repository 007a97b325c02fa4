"""The issue's "done when", driven from the studio with the keyboard on a workspace imported from a slice of
the sample logs: dedupe, freeze a held-out split, filter low-confidence answers into review, rebalance to
production (writes a version) and export it."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, OptionList, Select, Static

from curation.importing import import_file
from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.screens.curation import CurationScreen

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "production_logs.jsonl.gz"
N_LINES = 300


@pytest.fixture
def sample_ws(tmp_path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    part = tmp_path / "part.jsonl"
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as src, part.open("w", encoding="utf-8") as dst:
        for _, line in zip(range(N_LINES), src, strict=False):
            dst.write(line)
    ws = Workspace.open(tmp_path / "ws.duckdb")
    res = import_file(ws, part)
    assert res.n_imported > 250
    yield ws
    ws.close()


async def _settle(pilot, screen: CurationScreen) -> str:
    for _ in range(600):  # the first semantic step loads MiniLM and embeds the prompts
        await pilot.pause(0.05)
        if not screen.busy:
            break
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return str(screen.query_one("#cur-status", Static).render())


async def _step(pilot, screen: CurationScreen, op: str, values: dict[str, str | bool]) -> str:
    """Move the list cursor to ``op`` with the arrow keys, fill its form from the keyboard (``e``, then Tab from field
    to field), preview (enter in a text field, else ``p``) and apply (``a``)."""
    ops = screen.query_one("#cur-ops", OptionList)
    assert screen.focused is ops  # where a preview leaves the focus
    target = list(screen.ops).index(op)
    while ops.highlighted != target:
        await pilot.press("down" if (ops.highlighted or 0) < target else "up")
    form = screen.form()
    names = form.options.names
    last = max(names.index(n) for n in values)
    await pilot.press("e")
    for i, name in enumerate(names[: last + 1]):
        field = form.field(name)
        assert screen.focused is field, (name, screen.focused)
        if name in values:
            want = values[name]
            if isinstance(field, Checkbox):
                if field.value != want:
                    await pilot.press("space")
            elif isinstance(field, Select):
                await pilot.press("enter", *str(want), "enter")  # open, type to search, pick
            else:
                await pilot.press("home", "ctrl+k", *str(want))
            await pilot.pause()
            assert form.raw(name) == want, (name, form.raw(name))
        if i < last:
            await pilot.press("tab")
    await pilot.press("enter" if isinstance(screen.focused, Input) else "p")
    status = await _settle(pilot, screen)
    assert "ready" in status, status
    assert screen.previewed is not None and screen.previewed.op == op
    await pilot.press("a")
    status = await _settle(pilot, screen)
    assert status.startswith("done:"), status
    return status


async def test_curation_flow_from_the_keyboard(sample_ws, tmp_path):
    ws = sample_ws
    out = tmp_path / "export"
    app = DistillStudio(workspace=ws)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CurationScreen)

        await _step(pilot, screen, "dedupe", {"kind": "semantic", "threshold": "0.9", "force": True})
        assert ws.scalar("SELECT count(*) FROM dedupe_runs WHERE kind = 'semantic'") == 1
        assert ws.scalar("SELECT count(*) FROM dedupe_members WHERE NOT kept") > 0

        await _step(pilot, screen, "split", {"name": "heldout", "share": "0.1", "seed": "0"})
        n_held = ws.scalar("SELECT count(*) FROM split_members WHERE split = 'heldout' AND side = 'heldout'")
        assert n_held > 0

        await _step(pilot, screen, "filter", {"name": "lowconf", "confidence": "min_logprob", "min": "-1.5"})
        failed = ws.scalar(
            "SELECT count(*) FROM filter_results f JOIN filter_runs r USING (run_id) WHERE r.name = 'lowconf' AND NOT ok"
        )
        assert failed > 0
        assert ws.scalar("SELECT count(*) FROM reviews WHERE status = 'needs_review'") == failed

        await _step(pilot, screen, "rebalance", {"to": "production", "mode": "weight", "seed": "0", "name": "prod-v1"})
        version = ws.query_dicts("SELECT name, split, n_train, n_heldout FROM dataset_versions")
        assert [(v["name"], v["split"]) for v in version] == [("prod-v1", "heldout")]
        # The frozen split holds: every held-out member of the version is in the split, nothing else is.
        held = {r[0] for r in ws.query("SELECT record_id FROM dataset_members WHERE side = 'heldout'")}
        frozen = {r[0] for r in ws.query("SELECT record_id FROM split_members WHERE side = 'heldout'")}
        assert held and held <= frozen
        # Records waiting for review and dedupe-removed ones are not in the version.
        in_version = {r[0] for r in ws.query("SELECT record_id FROM dataset_members")}
        pending = {r[0] for r in ws.query("SELECT record_id FROM reviews WHERE status = 'needs_review'")}
        removed = {r[0] for r in ws.query("SELECT record_id FROM dedupe_members WHERE NOT kept")}
        assert not in_version & pending
        assert not (in_version - held) & removed

        status = await _step(pilot, screen, "export", {"version": "prod-v1", "format": "jsonl", "out": str(out)})
        assert "prod-v1" in status
    train = [json.loads(x) for x in (out / "prod-v1.train.jsonl").read_text().splitlines()]
    heldout = [json.loads(x) for x in (out / "prod-v1.heldout.jsonl").read_text().splitlines()]
    assert len(train) == version[0]["n_train"] and len(heldout) == version[0]["n_heldout"]
    assert train[0]["messages"][-1]["role"] == "assistant"
    assert not any("review" in k or "reviewer" in k or "metadata" in k for k in train[0])


def test_curation_flow_from_the_cli(sample_ws, tmp_path, capsys):
    from distill.cli import main

    w = ["-w", str(sample_ws.path)]
    sample_ws.close()
    steps = [
        ["dedupe", "--threshold", "0.9", "--force"],
        ["split", "make", "--share", "0.1"],
        ["filter", "lowconf", "--confidence", "min_logprob", "--min", "-1.5", "--policy", "review"],
        ["rebalance", "--to", "production", "--since", "2026-01-01", "--name", "prod-v1"],
        ["export", "prod-v1", "--out", str(tmp_path / "ex")],
        ["split", "check"],
    ]
    for argv in steps:
        assert main([*argv, *w]) == 0, argv
    out = capsys.readouterr().out
    assert "stored dedupe run 1" in out and "split 'heldout' frozen" in out and "0 leaking pairs" in out
    ws = Workspace.open(Path(w[1]))
    try:
        assert ws.scalar("SELECT count(*) FROM reviews WHERE status = 'needs_review'") > 0
        assert ws.scalar("SELECT split FROM dataset_versions WHERE name = 'prod-v1'") == "heldout"
    finally:
        ws.close()
    lines = (tmp_path / "ex" / "prod-v1.train.jsonl").read_text().splitlines()
    assert lines and set(json.loads(lines[0])) == {"messages"}
    assert (tmp_path / "ex" / "prod-v1.heldout.jsonl").exists()
