"""When two near-identical texts are still different requests: the token rule every near-duplicate decision applies.

A sentence embedding is dominated by the words two texts share and barely moves for the one that differs:
"TAIL LAMP BODY SIDE LH" ~ "... RH", "order #48213" ~ "order #77120", "I can log in" ~ "I can't log in" all score
from the default threshold to 0.99 with all-MiniLM-L6-v2. So a pair above the similarity threshold is a duplicate
only when the tokens in which the two texts differ are ones that do not change the request:
- noise: case, punctuation, spacing, function and politeness words (``NOISE_WORDS``), inflection (``-s``, ``-ed``,
  ``-ing``), typos (Damerau-Levenshtein 1 for words of 4-7 letters, 2 from 8);
- never noise: a number or the digits of a code, a negation (the count of not / no / never must match), a position
  qualifier (LH / RH, left / right, front / rear, upper / lower, inner / outer), a word whose opposite is on the other
  side (in / out, debit / credit ...), a different unit where both name one (mm / cm);
- a line without function words (a parts catalogue, product titles) is a list of attributes: there every content
  word must match (up to noise), since "TAIL LAMP SIDE" ~ "TAIL LAMP BODY SIDE" (0.95) name different parts.
Any other difference (synonyms in a sentence: "charged twice" / "billed two times") is left to the embedding.

Measured with ``bench/dedupe_bench.py`` step 4 at the default threshold (old rule = same numbers only):
templates that must stay apart (bench/template_set.py) precision 0.206 -> 1.000, recall 0.751 -> 0.746; paraphrase
set precision 0.867 -> 0.862, recall 0.619 -> 0.595. In a trial on 3,000 banking77 messages (77 intents; not part
of the bench) the share of merged pairs with the same intent rose 0.706 -> 0.765 and the removal fell 50% -> 45%.
A character 3-gram Dice check on short texts instead (>= 0.6 for texts of at most 5 content words), tried on a
first draft of the template set, reached precision 0.965 there and cost the paraphrase set recall 0.595 -> 0.429:
catalogue neighbours share most of their characters, and short paraphrases share few.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

# Words an embedding (and a reader) treats as noise between two requests. Not ``curation.slices.STOPWORDS`` (words
# too common to name a cluster): that list holds "not", which changes a request here.
NOISE_WORDS = frozenset(
    """a an the i me my mine we us our ours you your yours he him his she her hers it its they them their theirs this
    that these those is am are was were be been being do does did doing have has had having will would shall should
    can could may might must to of for at by with from as about into onto over than then so and or but if because
    while also just only very too all any some there here what which who whom whose when where why how hi hello hey
    dear please pls thanks thank thx team ok okay yes yeah get got gets getting want wants need needs like help
    kindly""".split()
)
NEGATIONS = frozenset("not no never without none nothing nobody neither nor".split())
QUALIFIERS = frozenset("lh rh left right front rear upper lower inner outer".split())
_OPPOSITE_PAIRS = (
    "in/out on/off up/down top/bottom open/close open/closed enable/disable enabled/disabled start/stop before/after "
    "min/max minimum/maximum high/low higher/lower more/less increase/decrease add/remove buy/sell debit/credit "
    "deposit/withdraw north/south east/west male/female first/last import/export send/receive sent/received "
    "incoming/outgoing accept/decline accepted/declined approved/declined true/false plus/minus positive/negative "
    "allow/deny old/new early/late"
)
OPPOSITES: dict[str, frozenset[str]] = {}
for _pair in _OPPOSITE_PAIRS.split():
    _x, _y = _pair.split("/")
    OPPOSITES[_x] = OPPOSITES.get(_x, frozenset()) | {_y}
    OPPOSITES[_y] = OPPOSITES.get(_y, frozenset()) | {_x}
UNITS = frozenset(
    "mm cm m km in inch inches ft foot feet g kg mg lb lbs oz ml l cl dl gal v kv mv w kw mw a ma mah hz khz mhz ghz "
    "kb mb gb tb usd eur gbp".split()
)
_TOKEN = re.compile(r"[^\W\d_]+|\d+")  # letters or digits: "M8X20" -> m, 8, x, 20; "#48213" -> 48213
_SUFFIXES = ("ing", "ed", "es", "s", "ly")


def tokens(text: str) -> list[str]:
    """Lower-case word and number tokens, contractions opened (``can't`` -> can not), possessive ``'s`` dropped."""
    t = unicodedata.normalize("NFKC", text or "").casefold().replace("\u2019", "'")
    t = re.sub(r"\bcan't\b|\bcannot\b", "can not", t)
    t = re.sub(r"\bwon't\b", "will not", t)
    t = re.sub(r"n't\b", " not", t)
    t = re.sub(r"'s\b", "", t)
    return _TOKEN.findall(t)


def _special(t: str) -> bool:
    return t.isdigit() or t in QUALIFIERS or t in OPPOSITES or t in UNITS


def _key(t: str) -> str:
    """A content token as compared: a meaning word or number as is, another word without its inflection."""
    if _special(t) or len(t) < 5 or not t.isalpha():
        return t
    for suf in _SUFFIXES:
        if t.endswith(suf) and len(t) - len(suf) >= 3:
            t = t[: -len(suf)]
            return t[:-1] if len(t) > 3 and t[-1] == t[-2] else t  # shipping -> shipp -> ship
    return t


def edit_distance(a: str, b: str, cap: int = 2) -> int:
    """Damerau-Levenshtein distance (optimal string alignment), at most ``cap + 1`` (= more than ``cap``)."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    before: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], before[j - 2] + 1)
        if min(cur) > cap:
            return cap + 1
        before, prev = prev, cur
    return min(prev[-1], cap + 1)


def _typo(x: str, y: str) -> bool:
    if not (x.isalpha() and y.isalpha()) or _special(x) or _special(y):
        return False
    n = min(len(x), len(y))
    return n >= 4 and edit_distance(x, y) <= (1 if n < 8 else 2)


@dataclass(frozen=True)
class TextTokens:
    """What the rule compares of one text."""

    negations: int
    content: Counter[str]  # content tokens by ``_key``
    function_words: bool  # False for a catalogue line / title (only content words)


def analyse(text: str) -> TextTokens:
    """The negation count, content tokens and whether the text has function words."""
    toks = tokens(text)
    content = Counter(_key(t) for t in toks if t not in NOISE_WORDS and t not in NEGATIONS)
    return TextTokens(sum(t in NEGATIONS for t in toks), content, any(t in NOISE_WORDS for t in toks))


def difference(a: TextTokens, b: TextTokens) -> str | None:
    """Why two texts are different requests despite their similarity (None: only noise differs)."""
    if a.negations != b.negations:
        return "negation"
    only_a = list((a.content - b.content).elements())
    only_b = list((b.content - a.content).elements())
    for x in list(only_a):  # typos pair up and cancel out
        y = next((y for y in only_b if _typo(x, y)), None)
        if y is not None:
            only_a.remove(x)
            only_b.remove(y)
    rest = only_a + only_b
    if not rest:
        return None
    if any(t.isdigit() for t in rest):
        return "number"
    if any(t in QUALIFIERS for t in rest):
        return "qualifier"
    set_b = set(only_b)
    if any(OPPOSITES.get(t, frozenset()) & set_b for t in only_a):
        return "opposite"
    if any(t in UNITS for t in only_a) and any(t in UNITS for t in only_b):
        return "unit"
    if not (a.function_words and b.function_words):
        return "catalogue word"
    return None


class TokenRule:
    """The rule over a list of texts, each analysed once (on first use)."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self._seen: dict[int, TextTokens] = {}

    def _of(self, k: int) -> TextTokens:
        got = self._seen.get(k)
        if got is None:
            got = self._seen[k] = analyse(self.texts[k])
        return got

    def reason(self, i: int, j: int) -> str | None:
        """Why texts ``i`` and ``j`` are different requests (None: they may be duplicates)."""
        return difference(self._of(i), self._of(j))


def why_different(a: str, b: str) -> str | None:
    """Why two texts are different requests whatever their similarity (None: only noise differs)."""
    return difference(analyse(a), analyse(b))
