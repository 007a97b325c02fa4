"""The record detail shows a long answer whole and lists only real alternatives of a doubtful token."""

from __future__ import annotations

import json

from rich.console import Console

from studio.widgets.record_view import alternatives, token_heat_map, wrapped_json

SUMMARY = "Order #800733 is going to my old address in Lyon! I've tried twice already, please fix it from Denver"


def _text(renderable: object, width: int = 60) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return " ".join(console.export_text().split())


def test_long_json_strings_wrap_instead_of_being_cut() -> None:
    answer = json.dumps({"intent": "wrong_address", "summary": SUMMARY})
    shown = _text(wrapped_json(answer)).replace(" ", "")
    assert SUMMARY.replace(" ", "") in shown


def test_alternatives_leave_out_the_chosen_token_and_its_twins() -> None:
    tok = {
        "token": '"',
        "logprob": -3.9,
        "top_logprobs": [
            {"token": '"', "logprob": -3.9},
            {"token": '"', "logprob": -0.02},  # another token id with the same text
            {"token": "\n", "logprob": -7.9},
            {"token": "'", "logprob": -5.0},
        ],
    }
    assert [t for t, _ in alternatives(tok)] == ["'", "\n"]
    table = _text(token_heat_map([tok]))
    assert "0.98" not in table and "'\\'' " not in table
