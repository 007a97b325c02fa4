"""The studio's Production screen on a drifted input stream: traffic, fallback, agreement, drift and an alarm, then
the re-distill plan run from one key after a confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from curation.workspace import Workspace
from studio.app import SCREENS, DistillStudio
from studio.screens.production import ProductionScreen
from tests.monitor.logfix import answer, log_line, write_log
from tests.monitor.wsfix import N_TRAIN, build_served_workspace, sample_prompts
from tests.studio.conftest import Note, notes, settle  # noqa: F401  (notes is a fixture)
from train.serve.settings import logs_dir


def live_lines() -> list[dict]:
    """The last few minutes: "billing" traffic that is really technical questions (shadow, 3 in 4 agree) and
    shipping in student mode with 2 of 40 answers sent back to the teacher."""
    now = datetime.now(UTC)
    p = sample_prompts()
    lines = [log_line(t, slice_name="billing", student=answer("refund" if k % 4 else "other"),
                      teacher=answer("refund"), at=now - timedelta(seconds=300 - k))
             for k, t in enumerate(p["technical"][:40])]  # fmt: skip
    lines += [log_line(t, slice_name="shipping", route="teacher" if k < 2 else "student", mode="student",
                       student=answer("track"), teacher=answer("track") if k < 2 else None,
                       fallback_reason="low_confidence" if k < 2 else None, at=now - timedelta(seconds=200 - k))
              for k, t in enumerate(p["shipping"][N_TRAIN : N_TRAIN + 40])]  # fmt: skip
    return lines


def test_production_is_registered_with_the_next_hotkey() -> None:
    spec = next(s for s in SCREENS if s.key == "production")
    assert spec.screen_class is ProductionScreen and spec.hotkey == "0"  # after the checklist's 9


async def test_production_screen_shows_a_drifted_stream_and_redistills(tmp_path: Path, notes: list[Note]) -> None:  # noqa: F811
    path = build_served_workspace(tmp_path / "ws.duckdb")
    write_log(logs_dir(path.with_name("ws.artifacts")), live_lines())
    ws = Workspace.open(path)
    try:
        app = DistillStudio(ws, start="production")
        async with app.run_test(size=(180, 50)) as pilot:
            await settle(pilot, rounds=6)
            screen = app.screen
            assert isinstance(screen, ProductionScreen)
            r = screen.report
            assert r is not None and r.drift_at is not None
            by = {s.slice: s for s in r.traffic.slices}
            assert r.traffic.overall.requests == 80 and by["shipping"].routes == {"student": 38, "teacher": 2}
            assert (by["shipping"].fallback.k, by["shipping"].fallback.n) == (2, 40)
            assert (by["billing"].agreement.k, by["billing"].agreement.n) == (30, 40)
            drift = {d.slice: d for d in r.drift}
            assert drift["billing"].drifted(0.6) and not drift["shipping"].drifted(0.6)
            # what the widgets show
            table = screen.query_one("#prod-slices")
            rows = {table.get_row_at(i)[0]: table.get_row_at(i) for i in range(table.row_count)}
            assert set(rows) == {"(all)", "billing", "shipping"}
            assert rows["shipping"][5].startswith("5.0% [") and rows["billing"][6].startswith("75.0% [")
            assert rows["billing"][8].startswith("1.00 [")
            alarms = str(screen.query_one("#prod-alarms").render())
            assert "ALARM  billing: live prompts differ from its training prompts" in alarms
            assert "watch  billing: student-teacher agreement 75.0% [" in alarms  # 30 of 40 may still be 0.8
            details = str(screen.query_one("#prod-details").render())
            assert "Latency per route" in details and "Cost:" in details
            # re-distill: one key, a confirmation naming the files, then the import
            before = ws.scalar("SELECT count(*) FROM records")
            await pilot.press("R")
            await pilot.pause()
            question = str(app.screen.query_one("#question").render())
            assert "import 1 log file(s)" in question and "billing (AUC 1.00)" in question
            await pilot.press("y")
            await settle(pilot, rounds=4)
            assert ws.scalar("SELECT count(*) FROM records") == before + 80
            assert any(n.title == "Re-distill" and "80 new record(s)" in n.message for n in notes)
    finally:
        ws.close()


async def test_production_screen_without_logs_or_run(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "empty.duckdb")
    try:
        app = DistillStudio(ws, start="production")
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot, rounds=4)
            screen = app.screen
            assert isinstance(screen, ProductionScreen) and screen.report is not None
            assert screen.report.traffic.overall.requests == 0 and screen.plan is None
            summary = str(screen.query_one("#prod-details").render())
            assert "no quality bar" in summary and "no training version" in summary and "no gateway log in" in summary
            await pilot.press("w")
            await settle(pilot)
            assert screen.report.window == "last 0:15:00"
            await pilot.press("R")
            await pilot.pause()
            assert isinstance(app.screen, ProductionScreen)  # nothing to confirm without an alarm
    finally:
        ws.close()
