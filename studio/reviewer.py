"""The reviewer's name for this studio: asked once, remembered in the user's config folder beside the keymap.

``$DISTILL_REVIEWER`` wins (scripts, shared accounts); else the remembered name; else the studio asks on the first
visit to the review queue and remembers the answer (``<config dir>/reviewer``).
"""

from __future__ import annotations

import os
from pathlib import Path

from studio.keymap import config_dir

REVIEWER_FILE = "reviewer"


def reviewer_path() -> Path:
    """Where the remembered name lives."""
    return config_dir() / REVIEWER_FILE


def in_browser() -> bool:
    """Whether this studio runs in a browser session (textual-serve): the config folder is the server's, shared by
    every browser, so a name is asked per session and never remembered there."""
    return "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")


def known_reviewer() -> str | None:
    """``$DISTILL_REVIEWER``, else the remembered name (not in a browser), else None (the studio asks)."""
    env = os.environ.get("DISTILL_REVIEWER", "").strip()
    if env:
        return env
    if in_browser():
        return None
    try:
        name = reviewer_path().read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name or None


def remember_reviewer(name: str) -> str | None:
    """Store the name for the next start; returns why it could not be stored (the name still holds for this run)."""
    if in_browser():
        return None
    path = reviewer_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name.strip() + "\n", encoding="utf-8")
    except OSError as exc:
        return f"could not remember the reviewer name in {path}: {exc.strerror or exc}"
    return None
