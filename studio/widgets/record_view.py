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


def render_record(d: RecordDetail) -> RenderableType:
    """Everything about a record as one Rich renderable."""
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

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("select a record", id="record-body")

    def show(self, detail: RecordDetail | None) -> None:
        """Display ``detail`` (None clears the pane)."""
        self.shown_record_id = detail.record_id if detail is not None else None
        body = self.query_one("#record-body", Static)
        body.update(render_record(detail) if detail is not None else Text("no record", style="dim"))
        self.scroll_home(animate=False)
