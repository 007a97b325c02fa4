"""The detail of one record: conversation, teacher response, token heat map, review state, metadata, edit diff."""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from curation.browse import RecordDetail
from curation.records import content_text
from curation.teacher_answers import TeacherAnswer, word_diff

LOW_PROB = 0.5  # tokens below this probability are highlighted and listed with their alternatives
MAX_LISTED = 8


def _json_or_text(text: str | None) -> RenderableType:
    if text is None:
        return Text("(no response yet)", style="dim italic")
    try:
        json.loads(text)
    except ValueError:
        return Text(text)
    return wrapped_json(text)


def wrapped_json(text: str) -> JSON:
    """Pretty JSON whose long strings wrap: Rich's JSON never wraps and crops at the panel edge (a summary ended
    mid-word with no sign that more followed)."""
    rendered = JSON(text, indent=2)
    rendered.text.no_wrap = False
    rendered.text.overflow = "fold"
    return rendered


def _heat_style(prob: float) -> str:
    if prob < 0.2:
        return "bold white on red"
    if prob < LOW_PROB:
        return "black on dark_orange"
    if prob < 0.8:
        return "black on yellow"
    return ""


def token_heat_map(logprobs: list[dict[str, Any]]) -> RenderableType:
    """The response as its tokens, coloured by probability, plus a table of the least likely ones."""
    text = Text()
    low: list[tuple[float, int, dict[str, Any]]] = []
    for i, tok in enumerate(logprobs):
        lp = tok.get("logprob")
        prob = math.exp(lp) if isinstance(lp, int | float) else 1.0
        text.append(str(tok.get("token", "")), style=_heat_style(prob))
        if prob < LOW_PROB:
            low.append((prob, i, tok))
    parts: list[RenderableType] = [text]
    if low:
        table = Table("#", "token", "p", "top alternatives", box=None, padding=(0, 1), header_style="bold")
        for prob, i, tok in sorted(low, key=lambda t: t[0])[:MAX_LISTED]:
            alts = ", ".join(f"{t!r} {p:.2f}" for t, p in alternatives(tok)[:4])
            table.add_row(str(i), repr(str(tok.get("token", ""))), f"{prob:.2f}", alts)
        parts += [Text(f"{len(low)} token(s) below p={LOW_PROB}:", style="bold"), table]
    else:
        parts.append(Text(f"no token below p={LOW_PROB}", style="dim"))
    return Group(*parts)


def alternatives(tok: dict[str, Any]) -> list[tuple[str, float]]:
    """The other tokens the model weighed, most likely first: providers list the chosen token among its own top
    alternatives, and two tokens can share a text (different ids); a text equal to the chosen token's is no
    alternative to show (it read as the chosen token with another probability)."""
    chosen = str(tok.get("token", ""))
    seen = {chosen}
    out: list[tuple[str, float]] = []
    for a in tok.get("top_logprobs") or []:
        text = str(a.get("token", ""))
        lp = a.get("logprob")
        if text in seen or not isinstance(lp, int | float):
            continue
        seen.add(text)
        out.append((text, math.exp(lp)))
    return sorted(out, key=lambda x: -x[1])


def edit_diff(original: str | None, edited: str | None) -> RenderableType:
    """A unified diff of the teacher's original response against the reviewer's edit."""
    out = Text()
    for line in difflib.unified_diff(
        (original or "").splitlines(), (edited or "").splitlines(), "teacher", "edited", lineterm="", n=2
    ):
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
        out.append(line + "\n", style=style)
    return out


def word_diff_text(a: str, b: str) -> Text:
    """Two answers' word diff (``curation.teacher_answers.word_diff``): words only in the first red, struck through;
    only in the second green."""
    out = Text()
    for op, words in word_diff(a, b):
        out.append(words + " ", style={"=": "", "-": "red strike", "+": "green"}[op])
    return out


def teachers_panel(d: RecordDetail, selected: int, base: int) -> RenderableType:
    """Every teacher's answer side by side with its confidence; ``selected`` (an index into ``d.answers``) is
    highlighted and diffed against ``base`` (another teacher's answer, or -1: the record's current answer)."""
    table = Table("", "teacher", "conf", "answer", box=None, padding=(0, 1), header_style="bold", expand=True)
    for i, a in enumerate(d.answers):
        mark = ("▶" if i == selected else " ") + ("●" if a.response == d.response else " ")
        conf = "-" if a.confidence is None else f"{a.confidence:.2f}"
        name = a.teacher + (" (import)" if a.own else "")
        table.add_row(mark, name, conf, Text(a.response), style="reverse" if i == selected else "")
    parts: list[RenderableType] = [table]
    if 0 <= selected < len(d.answers):
        sel = d.answers[selected]
        if 0 <= base < len(d.answers) and base != selected:
            base_name, base_text = d.answers[base].teacher, d.answers[base].response
        else:
            base_name, base_text = ("edit" if d.response != d.original_response else "current answer"), d.response or ""
        parts += [
            Text(f"word diff: {base_name} → {sel.teacher}", style="bold"),
            word_diff_text(base_text, sel.response),
        ]
    parts.append(Text("● = the record's current answer · t next teacher · d diff against · T take it (review)", "dim"))
    return Panel(Group(*parts), title=f"teachers ({len(d.answers)})", title_align="left", border_style="blue")


def render_record(d: RecordDetail, selected: int = 0, base: int = -1) -> RenderableType:
    """Everything about a record as one Rich renderable (``selected``/``base``: see ``teachers_panel``)."""
    conv = Text()
    for m in d.messages:
        conv.append(f"{m.get('role', '?')}: ", style="bold magenta")
        conv.append(content_text(m.get("content")) + "\n")
    conf = "-" if d.confidence is None else f"{d.confidence:.3f}"
    status = Text.assemble(
        ("status ", "dim"),
        (d.status, {"accepted": "green", "rejected": "red", "needs_review": "yellow"}.get(d.status, "")),
        ("  slice ", "dim"),
        (d.slice, "cyan"),
        (f" (was {d.original_slice})" if d.slice != d.original_slice else "", "dim"),
        ("  confidence ", "dim"),
        conf,
        ("  by ", "dim") if d.reviewer else "",
        d.reviewer or "",
        (f"  reason: {d.reason}", "italic") if d.reason else "",
    )
    edited = d.response != d.original_response
    parts: list[RenderableType] = [
        Text(f"record {d.record_id} · batch {d.batch_id} · {d.source_file}:{d.source_line}", style="bold"),
        status,
        Panel(conv, title="conversation", title_align="left", border_style="magenta"),
        Panel(
            _json_or_text(d.response),
            title="response (edited)" if edited else "teacher response",
            title_align="left",
            border_style="green" if not edited else "yellow",
        ),
    ]
    if edited:
        parts.append(Panel(edit_diff(d.original_response, d.response), title="edit diff", title_align="left"))
    if len(d.answers) > 1:
        parts.append(teachers_panel(d, selected, base))
    if d.logprobs:
        parts.append(Panel(token_heat_map(d.logprobs), title="token confidence", title_align="left"))
    if d.reference:
        parts.append(Panel(_json_or_text(d.reference), title="reference", title_align="left"))
    if d.metadata:
        parts.append(
            Panel(wrapped_json(json.dumps(d.metadata)), title="metadata", title_align="left", border_style="dim")
        )
    if d.comments:
        notes = Text()
        for c in d.comments:
            notes.append(f"{c['reviewer']}: ", style="bold")
            notes.append(f"{c['body']}\n")
        parts.append(Panel(notes, title=f"comments ({len(d.comments)})", title_align="left", border_style="cyan"))
    live = [e for e in d.events if not e["undone"]]
    if d.events:
        hist = Text()
        for e in d.events[-8:]:
            line = f"#{e['event_id']} {e['action']} {e['reason'] or e['new_slice'] or ''} by {e['reviewer']}"
            hist.append(line + (" (undone)" if e["undone"] else "") + "\n", style="dim" if e["undone"] else "")
        parts.append(Panel(hist, title=f"decisions ({len(live)} live)", title_align="left", border_style="dim"))
    return Group(*parts)


class RecordView(VerticalScroll):
    """A scrollable pane showing one record (or a hint when none is selected)."""

    DEFAULT_CSS = """
    RecordView { height: 1fr; }
    RecordView > Static { width: 1fr; }
    """

    shown_record_id: int | None = None
    detail: RecordDetail | None = None
    selected = 0  # the highlighted teacher's answer (index into detail.answers)
    base = -1  # the answer it is diffed against (-1: the record's current answer)

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("select a record", id="record-body")

    def show(self, detail: RecordDetail | None) -> None:
        """Display ``detail`` (None clears the pane)."""
        self.shown_record_id = detail.record_id if detail is not None else None
        self.detail, self.selected, self.base = detail, 0, -1
        self._redraw()
        self.scroll_home(animate=False)

    def _redraw(self) -> None:
        d = self.detail
        body = self.query_one("#record-body", Static)
        body.update(render_record(d, self.selected, self.base) if d is not None else Text("no record", style="dim"))

    def next_teacher(self) -> str | None:
        """Highlight the next teacher's answer; its name (None when the record has one teacher)."""
        if self.detail is None or len(self.detail.answers) < 2:
            return None
        self.selected = (self.selected + 1) % len(self.detail.answers)
        self._redraw()
        return self.detail.answers[self.selected].teacher

    def next_base(self) -> str | None:
        """Diff the highlighted answer against the next one (the current answer, then each teacher's in turn)."""
        if self.detail is None or len(self.detail.answers) < 2:
            return None
        self.base = self.base + 1 if self.base + 1 < len(self.detail.answers) else -1
        self._redraw()
        return "current answer" if self.base < 0 else self.detail.answers[self.base].teacher

    def selected_answer(self) -> TeacherAnswer | None:
        """The highlighted teacher's answer (None when the record has one teacher)."""
        if self.detail is None or len(self.detail.answers) < 2:
            return None
        return self.detail.answers[self.selected]
