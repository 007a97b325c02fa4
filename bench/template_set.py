"""Near-identical templates that must stay apart, for the dedupe benchmark (written for this project).

Short, templated texts (a parts catalogue, order tickets, yes/no statements) where one token carries the meaning:
a side (LH / RH, FRONT / REAR), a part noun (TAIL LAMP BODY SIDE / TAIL DOOR SIDE), a number or part code, a unit,
a negation. Sentence embeddings score such pairs from the default threshold up to 0.99, so a threshold alone
merges them. Each group is one item written several ways that a reader takes as the same (case, punctuation,
spacing, one typo, a contraction):
pairs inside a group are duplicates, pairs across groups must stay apart. ``template_groups(seed)`` draws them.
"""

from __future__ import annotations

import random

PARTS = [
    "TAIL LAMP BODY SIDE", "TAIL DOOR SIDE", "HEAD LAMP ASSY", "FOG LAMP COVER", "DOOR MIRROR GLASS",
    "DOOR MIRROR COVER", "BUMPER BRACKET", "BUMPER COVER", "WHEEL ARCH LINER", "WIPER ARM", "WIPER BLADE",
    "DOOR HANDLE", "WINDOW REGULATOR", "SEAT BELT BUCKLE", "BRAKE PAD SET", "SHOCK ABSORBER", "CONTROL ARM",
]  # fmt: skip
# Parts one word apart (a word added or swapped): catalogue neighbours, not duplicates.
NEIGHBOURS = [
    "TAIL LAMP SIDE", "TAIL GATE SIDE", "FOG LAMP BULB", "HEAD LAMP BULB", "HEAD LAMP LENS", "DOOR MIRROR MOTOR",
    "RADIATOR HOSE", "RADIATOR HOSE CLAMP", "WHEEL NUT", "WHEEL BOLT", "WIPER MOTOR", "FRONT DOOR HINGE",
    "AIR FILTER", "CABIN FILTER", "TIMING BELT", "TIMING CHAIN",
]  # fmt: skip
SIDES = [("LH", "RH"), ("LEFT", "RIGHT"), ("FRONT", "REAR"), ("UPPER", "LOWER"), ("INNER", "OUTER")]
SIZED = ["BOLT M8 X {n} MM", "HOSE CLAMP {n} MM", "WHEEL RIM {n} INCH", "BRAKE DISC {n} MM", "OIL FILTER PN 90915-{n}"]
UNITS = [("BRAKE HOSE 300 {u}", ("MM", "CM")), ("COOLANT 5 {u}", ("L", "ML")), ("CABLE TIE 200 {u}", ("MM", "CM"))]
STATEMENTS = [
    ("the payment {went} through", {"went": ("went", "did not go")}),
    ("I {can} log in to my account", {"can": ("can", "can't")}),
    ("my refund {has} arrived", {"has": ("has", "has not")}),
    ("the blender {is} dishwasher safe", {"is": ("is", "is not")}),
    ("the tracking page {shows} the parcel", {"shows": ("shows", "never shows")}),
    ("I {want} to cancel my subscription", {"want": ("want", "do not want")}),
    ("the app {works} on my tablet", {"works": ("works", "doesn't work")}),
    ("the two-factor code {arrives} by SMS", {"arrives": ("arrives", "never arrives")}),
]
ORDERS = ["Order #{n} has not arrived yet", "Please refund order #{n}", "Change the address on order #{n}"]


def _typo(text: str, rng: random.Random) -> str:
    """Swap two neighbouring letters inside one of the first two words (the part or subject, not the word that
    carries the difference) when it has five or more letters: a reader's typo, not a new word."""
    words = text.split(" ")
    long = [i for i, w in enumerate(words[:2]) if len(w) >= 5 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    w = words[i]
    k = rng.randrange(1, len(w) - 2)
    words[i] = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
    return " ".join(words)


def _variants(text: str, rng: random.Random, *, upper: bool) -> list[str]:
    """The same item as people type it: case, punctuation, spacing, one typo, a catalogue's last word first."""
    base = text.upper() if upper else text[0].upper() + text[1:]
    words = base.split(" ")
    comma = " ".join(words[:-1]) + ", " + words[-1] if len(words) > 2 else base + "."
    out = [base, base.lower() if upper else base + "!", comma, "  ".join(words), _typo(base, rng)]
    if upper and len(words) > 2:
        out.append(" ".join([words[-1], *words[:-1]]))  # "LH TAIL LAMP BODY SIDE"
    return out


def template_groups(seed: int = 0) -> list[list[str]]:
    """Groups of texts; within a group duplicates, across groups items that must stay apart."""
    rng = random.Random(seed)
    items: list[tuple[str, bool]] = []  # (text, catalogue style)
    for part in PARTS:
        items.append((part, True))
        for a, b in rng.sample(SIDES, 2):
            items.extend([(f"{part} {a}", True), (f"{part} {b}", True)])
    items.extend((part, True) for part in NEIGHBOURS)
    for tpl in SIZED:
        items.extend((tpl.format(n=n), True) for n in rng.sample([10, 12, 16, 17, 20, 25, 30, 35], 3))
    for tpl, units in UNITS:
        items.extend((tpl.format(u=u), True) for u in units)
    for tpl, slots in STATEMENTS:
        ((key, (yes, no)),) = slots.items()
        items.extend([(tpl.format(**{key: yes}), False), (tpl.format(**{key: no}), False)])
    for tpl in ORDERS:
        items.extend((tpl.format(n=n), False) for n in rng.sample(range(10_000, 99_999), 3))
    seen: set[str] = set()
    groups = []
    for text, upper in items:
        if text in seen:
            continue
        seen.add(text)
        groups.append(list(dict.fromkeys(_variants(text, rng, upper=upper))))
    return groups


GROUPS: list[list[str]] = template_groups()
