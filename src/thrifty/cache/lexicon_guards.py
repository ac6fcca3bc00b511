"""Lexicon guards: lower-case things of one sort, and opposed words, must agree.

The regex guards (``guards.py``) see capitalised names, numbers, units and negators; a
question about "dogs" and one about "cats", "12 times 13" and "12 plus 13", "should I
avoid" and "can I take" differ in none of those and embed close. These two guards read a
small hand-written lexicon (``cache/data/contrast_lexicon.json``, no third-party data):

* ``kinds``: sorts of lower-case things (animals, countries, languages, foods, drugs,
  programming languages, libraries, …). Fails when each text names one the other lacks.
* ``contrast``: groups of opposed classes (arithmetic operators, more/less, before/after,
  increase/decrease, take/avoid, safe/unsafe, …; synonyms share a class), plus lexical
  negation by prefix (safe/unsafe, legal/illegal, like/dislike). Fails when each text has
  a class of one group that the other lacks: "Is it safe or dangerous?" and "Is it safe?"
  pass (one side adds a class), "Is it safe?" and "Is it dangerous?" fail.

A word matches in its plural too (dogs, puppies, boxes). Example::

    >>> check_kinds("Can dogs eat grapes?", "Can cats eat grapes?")
    "animal: ['dog'] vs ['cat']"
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

LEXICON = Path(__file__).resolve().parent / "data" / "contrast_lexicon.json"
_WORD = re.compile(r"[^\W\d_][\w'’+#-]*|[+*×÷^]")
_OPERATOR = re.compile(r"(?<=\d)\s*([+*×÷^])\s*(?=[\d(])")


def _listed(words: str) -> list[str]:
    return words.split()


_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred)\b"
)
_NEEDS_NUMBERS = frozenset({"arithmetic"})  # "divide the data" is not arithmetic
_PREFIXES = ("un", "non", "in", "im", "il", "ir", "dis")
_NOT_OPPOSITES = frozenset(
    _listed(
        "import port input put inform form display play discover cover invest vest insight "
        "sight impress press income come inside side impact pact install stall index dex "
        "intake take migrate migrated immigrate immigrated untie tie dispatch patch discuss "
        "cuss disease ease inset set insert sert disk irate rate imply ply unite ite dismiss "
        "miss distrust trust invent vent inline line unit it"
    )
)  # pairs that look like prefix + word but are not opposites (both halves listed)


@dataclass(frozen=True)
class Lexicon:
    """word → [(group, class)] for the ``kinds`` and the ``contrast`` groups."""

    kinds: dict[str, list[tuple[str, str]]]
    contrast: dict[str, list[tuple[str, str]]]


@cache
def lexicon(path: Path = LEXICON) -> Lexicon:
    raw = json.loads(path.read_text("utf-8"))
    kinds: dict[str, list[tuple[str, str]]] = {}
    for kind, classes in raw["kinds"].items():
        for spec in classes:
            words = spec.split("|")
            for word in words:
                kinds.setdefault(word, []).append((kind, words[0]))
    contrast: dict[str, list[tuple[str, str]]] = {}
    for group, classes in raw["contrast"].items():
        for spec in classes:
            words = [w.strip() for w in spec.split("|") if w.strip()]
            for word in words:
                contrast.setdefault(word, []).append((group, words[0]))
    return Lexicon(kinds, contrast)


def _forms(word: str) -> tuple[str, ...]:
    """The word and the singulars it may be a plural of (dogs, boxes, puppies)."""
    forms = [word]
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        forms.append(word[:-2])
    if word.endswith("s") and len(word) > 3:
        forms.append(word[:-1])
    return tuple(forms)


@lru_cache(maxsize=4096)
def _words(text: str) -> frozenset[str]:
    low = text.lower().replace("’", "'")
    words = {w[:-2] if w.endswith("'s") else w for w in _WORD.findall(low)}
    words |= set(_OPERATOR.findall(low))
    return frozenset(words)


def _classes(words: frozenset[str], table: dict[str, list[tuple[str, str]]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for word in words:
        for form in _forms(word):
            for group, name in table.get(form, ()):
                found.setdefault(group, set()).add(name)
            if form in table:
                break
    return found


def _clash(a: dict[str, set[str]], b: dict[str, set[str]]) -> str | None:
    for group in sorted(a.keys() & b.keys()):
        only_a, only_b = a[group] - b[group], b[group] - a[group]
        if only_a and only_b:
            return f"{group}: {sorted(only_a)} vs {sorted(only_b)}"
    return None


def check_kinds(query: str, cached: str) -> str | None:
    """Lower-case things of one sort must agree: "dogs" ≠ "cats", "france" ≠ "germany"."""
    table = lexicon().kinds
    return _clash(_classes(_words(query), table), _classes(_words(cached), table))


def check_contrast(query: str, cached: str) -> str | None:
    """Opposed words must agree: times/plus, more/less, take/avoid, safe/unsafe."""
    a, b = _words(query), _words(cached)
    table = lexicon().contrast
    classes_a, classes_b = _classes(a, table), _classes(b, table)
    if not (_NUMBER.search(query.lower()) and _NUMBER.search(cached.lower())):
        for group in _NEEDS_NUMBERS:
            classes_a.pop(group, None)
    clash = _clash(classes_a, classes_b)
    return clash if clash is not None else _prefix_negation(a - b, b - a)


def _prefix_negation(only_a: frozenset[str], only_b: frozenset[str]) -> str | None:
    """A word on one side and its prefixed opposite on the other (safe/unsafe)."""
    for x, y in ((only_a, only_b), (only_b, only_a)):
        for word in x:
            if word in _NOT_OPPOSITES or len(word) < 3:
                continue
            for prefix in _PREFIXES:
                negated = prefix + word
                if (
                    negated in y
                    and negated not in _NOT_OPPOSITES
                    and (prefix in ("un", "non") or len(word) >= 4)
                ):
                    return f"negated by prefix: {word!r} vs {negated!r}"
    return None
