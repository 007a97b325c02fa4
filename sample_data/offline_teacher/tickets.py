"""The sample generator's ticket templates (``sample_data.templates``), read backwards (which template wrote this
ticket?) and forwards (write a new ticket like this one).

Every template (the English ones per slice and intent, the non-English ones and the form spam) becomes a regular
expression with its placeholders as patterns; a ticket that contains one is that template's. Tickets that match none
exactly (the generator's typo variants, or text from elsewhere) go to the template whose placeholder-folded text is
most similar (difflib ratio), with that similarity as the match's score.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass
from functools import cache, lru_cache

from sample_data.generate import fill
from sample_data.templates import FILL, NON_EN, SLICES, SPAM, SUFFIXES

# A fuzzy match at least this similar is taken as sure. The generator's typo variants (two swapped character pairs)
# score 0.93-0.99 against their template; a ticket written from none of them scores below 0.7 (measured on the
# sample and on the tests' made-up tickets).
SURE = 0.8
_VALUE = {"order": r"#\d+", "amount": r"\$\d+(?:\.\d+)?", "days": r"\d+"}
# Added to a new ticket whose template has no high-entropy placeholder, so it is new text (not a repeat of a
# logged ticket, which the synthetic-input dedupe would drop).
DETAILS_EN = ("My customer number is {order}.", "The last charge on my account was {amount}.", "Reference {order}.")
DETAIL_OTHER = "({order})"  # language-neutral, for the non-English templates
_ENTROPY = re.compile(r"\{(order|amount)\}")


@dataclass(frozen=True)
class Template:
    """One ticket template of the generator with the labels its tickets carry."""

    slice: str
    intent: str
    urgency: str
    text: str
    lang: str
    spam: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        """The template as a case-insensitive regular expression (placeholders as their value patterns)."""
        return _pattern(self.text)

    @property
    def skeleton(self) -> str:
        """The template in the form tickets are compared in (lower case, placeholders kept)."""
        return " ".join(self.text.lower().split())


@dataclass(frozen=True)
class Match:
    """The template a ticket was written from; ``score`` 1.0 for an exact match, else the similarity."""

    template: Template
    score: float
    runner_up: Template | None  # for an inexact match, the most similar template of another intent

    @property
    def sure(self) -> bool:
        """Whether the match is close enough to answer without doubt."""
        return self.score >= SURE


def _all_templates() -> tuple[Template, ...]:
    out = [
        Template(slice_, intent, urgency, text, "en")
        for slice_, (_, intents) in SLICES.items()
        for intent, (urgency, texts) in intents.items()
        for text in texts
    ]
    for lang, (text, intent, slice_) in NON_EN.items():
        out.append(Template(slice_, intent, SLICES[slice_][1][intent][0], text, lang))
    spam_text, spam_slice, spam_intent, spam_urgency = SPAM
    out.append(Template(spam_slice, spam_intent, spam_urgency, spam_text, "en", spam=True))
    return tuple(out)


TEMPLATES = _all_templates()


@cache
def _pattern(text: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", text)  # literal, key, literal, key, ...
    rx = "".join(
        re.escape(p) if i % 2 == 0 else _VALUE.get(p) or "(?:" + "|".join(map(re.escape, FILL[p])) + ")"
        for i, p in enumerate(parts)
    )
    return re.compile(rx, re.IGNORECASE)


def _fold(text: str) -> str:
    """A ticket with its filled-in values put back as placeholders, lower case, whitespace collapsed."""
    t = " ".join(text.lower().split())
    t = re.sub(r"#\d+", "{order}", t)
    t = re.sub(r"\$\d+(?:\.\d+)?", "{amount}", t)
    t = re.sub(r"\d+", "{days}", t)
    for key, values in FILL.items():
        for v in sorted(values, key=len, reverse=True):
            t = t.replace(v.lower(), "{" + key + "}")
    return t


@lru_cache(maxsize=8192)
def match(ticket: str) -> Match:
    """The template ``ticket`` was most likely written from (every ticket gets one; see ``Match.sure``)."""
    exact = [t for t in TEMPLATES if t.pattern.search(ticket)]
    if exact:  # the longest: the most specific
        return Match(max(exact, key=lambda t: len(t.text)), 1.0, None)
    # Similarity only where no template matched: it costs ~10 ms a ticket here, the regular expressions ~0.1 ms.
    folded = _fold(ticket)
    scored = sorted(
        ((difflib.SequenceMatcher(None, folded, t.skeleton).ratio(), i) for i, t in enumerate(TEMPLATES)),
        reverse=True,
    )
    best = TEMPLATES[scored[0][1]]
    runner_up = next(TEMPLATES[i] for _, i in scored if TEMPLATES[i].intent != best.intent)
    return Match(best, round(scored[0][0], 4), runner_up)


def write_ticket(rng: random.Random, like: Template) -> str:
    """A new ticket of ``like``'s intent, language and kind: mostly from ``like`` itself, sometimes from the
    intent's other template; placeholders filled, a detail added where the template alone would repeat old text."""
    siblings = [t for t in TEMPLATES if (t.intent, t.lang, t.spam) == (like.intent, like.lang, like.spam)]
    tpl = like if rng.random() < 0.7 or len(siblings) < 2 else rng.choice([t for t in siblings if t != like])
    text = fill(rng, tpl.text)
    if not _ENTROPY.search(tpl.text):
        text += " " + fill(rng, rng.choice(DETAILS_EN) if tpl.lang == "en" else DETAIL_OTHER)
    if tpl.lang == "en" and not tpl.spam and rng.random() < 0.3:
        text += " " + rng.choice(SUFFIXES)
    return text
