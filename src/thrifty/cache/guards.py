"""Guards against semantic-cache false hits: cheap regex checks on top of the similarity.

The shipped embedder ignores word order and scores "convert 100 km to miles" and "convert
100 miles to km" at cosine 1.000, so a threshold alone cannot keep a cache correct. Each
guard compares the new question with the cached one and either passes (``None``) or says
why they differ. :func:`guard_verdict` runs them in order and returns the first failure.

Guards (``GUARDS`` maps name → function):

* ``numbers``: multisets of numbers (decimals, negatives, ``1,000``, ``50%``, number words
  zero…ninety and ``hundred``/``thousand``/``million``/``billion`` multipliers).
* ``units``: units/currencies, as a multiset, and which unit each number is bound to.
* ``negation``: count of negators (``not``, ``no``, ``never``, ``n't``, ``without`` …).
* ``entities``: proper-noun-like words, acronyms, quoted strings, code identifiers, URLs
  and emails of either text must appear in the other (case-insensitive).
* ``order``: same multiset of content words in a different order.
* ``kinds`` and ``contrast`` (``lexicon_guards.py``): lower-case things of one sort
  ("dogs"/"cats", "france"/"germany"), opposed words (times/plus, more/less, take/avoid,
  increase/decrease) and lexical negation by prefix (safe/unsafe), from a small lexicon.

Out of scope (they pass): opposites and sorts the lexicon lacks, ordinals as words
("first"/"second"). Example::

    >>> guard_verdict("Convert 100 km to miles", "Convert 100 miles to km").failed
    'units'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from thrifty.cache.lexicon_guards import check_contrast, check_kinds

__all__ = ["DEFAULT_GUARDS", "GUARDS", "GuardVerdict", "guard_verdict"]

DEFAULT_GUARDS: tuple[str, ...] = (
    "numbers", "units", "negation", "entities", "order", "kinds", "contrast"
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """``ok`` when every guard passed; else the first failing guard's name and why."""

    ok: bool
    failed: str | None = None
    detail: str = ""


_TOKEN = re.compile(
    r"(?P<num>(?<![\w.,])[-−]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)*))"
    r"|(?P<cur>[$€£¥₹])|(?P<deg>°\s?[CFK]?)|(?P<pct>%)"
    r"|(?P<word>[^\W\d_][\w'’]*)"
)


def _split(words: str) -> list[str]:
    return words.split()


_SMALL = {
    w: i
    for i, w in enumerate(
        _split(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen"
        )
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(_split("twenty thirty forty fifty sixty seventy eighty ninety"), 2)
}
_MULT = {"hundred": 100, "thousand": 1_000, "million": 10**6, "billion": 10**9}
# "one" is often a pronoun: "which one", "the one", "one of", "one should".
_ONE_PRONOUN_BEFORE = frozenset(_split("which this that the each every any no some another other"))
_ONE_PRONOUN_AFTER = frozenset(
    _split("of should can could would must may might will has have is does needs wants another")
)
_NEGATORS = frozenset(_split("not no never without neither nor none nobody nothing nowhere cannot"))

_ALWAYS: dict[str, str] = {}  # unambiguous unit words, counted anywhere
_AFTER_NUM: dict[str, str] = {}  # ambiguous ones ("m", "in", "second"), only right after a number
for _canon, _always, _after in (
    ("km", "km kms kilometer kilometers kilometre kilometres", ""),
    ("m", "meter meters metre metres", "m"),
    ("cm", "cm centimeter centimeters centimetre centimetres", ""),
    ("mm", "mm millimeter millimeters millimetre millimetres", ""),
    ("mi", "mile miles", "mi"),
    ("ft", "ft foot feet", ""),
    ("in", "inch inches", ""),
    ("yd", "yard yards yd", ""),
    ("kg", "kg kgs kilogram kilograms kilo kilos", ""),
    ("g", "gram grams", "g"),
    ("mg", "mg milligram milligrams", ""),
    ("lb", "lb lbs pound pounds", ""),
    ("oz", "oz ounce ounces", ""),
    ("t", "ton tons tonne tonnes", ""),
    ("l", "liter liters litre litres", "l"),
    ("ml", "ml milliliter milliliters millilitre millilitres", ""),
    ("gal", "gallon gallons gal", ""),
    ("c", "celsius centigrade", "c"),
    ("f", "fahrenheit", "f"),
    ("k", "kelvin", "k"),
    ("ms", "ms millisecond milliseconds", ""),
    ("us", "microsecond microseconds µs", ""),
    ("ns", "ns nanosecond nanoseconds", ""),
    ("s", "", "s sec secs second seconds"),
    ("min", "", "min mins minute minutes"),
    ("h", "", "h hr hrs hour hours"),
    ("day", "", "day days"),
    ("week", "", "week weeks"),
    ("month", "", "month months"),
    ("year", "", "year years yr yrs"),
    ("b", "byte bytes", "b"),
    ("kb", "kb kib kilobyte kilobytes", ""),
    ("mb", "mb mib megabyte megabytes", ""),
    ("gb", "gb gib gigabyte gigabytes", ""),
    ("tb", "tb tib terabyte terabytes", ""),
    ("mbps", "mbps gbps kbps", ""),
    ("hz", "hz khz mhz ghz hertz", ""),
    ("mph", "mph kph kmh", ""),
    ("w", "watt watts kw kwh", "w"),
    ("cal", "calorie calories kcal", ""),
    ("usd", "usd dollar dollars", ""),
    ("eur", "eur euro euros", ""),
    ("gbp", "gbp sterling", ""),
    ("jpy", "jpy yen", ""),
    ("cny", "cny rmb yuan", ""),
    ("inr", "inr rupee rupees", ""),
    ("chf", "chf franc francs", ""),
    ("btc", "btc bitcoin bitcoins", ""),
):
    _ALWAYS.update(dict.fromkeys(_always.split(), _canon))
    _AFTER_NUM.update(dict.fromkeys(_after.split(), _canon))
_SYMBOLS = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr"}
_DEGREES = {"°c": "c", "°f": "f", "°k": "k", "°": "deg"}

_STOP = frozenset(
    _split(
        "a an the of to in on at for from by with as and or is are was were be been being am do "
        "does did it its this that these those i me my you your we our he she they them their "
        "what which who whom how why when where please can could would should will shall may "
        "might must there here than then so if into about also just"
    )
)
# kept as content words by the order guard: they are the pivots of swapped arguments
_DIRECTIONAL = frozenset(_split("to from than by into before after over under per versus vs"))
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_QUOTED = re.compile(  # content may not start with a space: PAWS-style `` x '' and "Mehra 's"
    r"\"(?!\s)([^\"\n]{1,100})\"|“(?!\s)([^”\n]{1,100})”|`(?!\s)([^`\n]{1,100})`"
    r"|(?<!\w)'(?!\s|s\b)([^'\n]{1,100})'(?!\w)"
)
_CODE = re.compile(
    r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b|\b\w+(?=\()|\b\w*_\w*\b|\b[a-z]+[A-Z]\w*\b"
    r"|\b[^\W\d_]+\d\w*\b"
)
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n•*#>-])[\s\"'“(\[]*$")


@dataclass(frozen=True, slots=True)
class _Parsed:
    numbers: Counter[str]
    units: Counter[str]
    bound: Counter[tuple[str, str]]
    negators: int
    entities: frozenset[str]
    words: frozenset[str]
    content: tuple[str, ...]
    lower: str


def _canon_number(raw: str) -> str:
    sign = "-" if raw[0] in "-−" else ""
    body = raw.lstrip("-−").replace(",", "")
    if body.count(".") > 1:  # a version such as 1.2.3: compare as written
        return sign + body
    try:
        return sign + format(Decimal(body).normalize(), "f")
    except InvalidOperation:  # pragma: no cover - the regex only yields digits
        return sign + body


def _norm_word(word: str) -> str:
    word = word.lower().replace("’", "'")
    return word[:-2] if word.endswith("'s") else word


@lru_cache(maxsize=4096)
def _parse(text: str) -> _Parsed:
    """Tokenise once; every guard reads the result (cached, cached texts recur)."""
    tokens = [(m.lastgroup or "", m.group(), m.start()) for m in _TOKEN.finditer(text)]
    units: list[tuple[int, str]] = []  # (token index, canonical unit)
    num_at: dict[int, str] = {}
    negators = 0
    content: list[str] = []
    words: set[str] = set()
    run: list[int] = []  # number-word run being read: [total, current, last index]
    for i, (kind, raw, start) in enumerate(tokens):
        low = _norm_word(raw) if kind == "word" else raw.lower()
        prev = tokens[i - 1] if i else ("", "", 0)
        after_num = prev[0] == "num" or (prev[0] == "word" and prev[1].lower() in _SMALL)
        if kind == "num":
            num_at[i] = _canon_number(raw)
            content.append(num_at[i])
        elif kind == "cur":
            units.append((i, _SYMBOLS[raw]))
        elif kind == "deg":
            units.append((i, _DEGREES.get(low.replace(" ", ""), "deg")))
        elif kind == "pct" and i - 1 in num_at:
            num_at[i - 1] += "%"
        elif kind == "word":
            words.add(low)
            interjection = low == "no" and text[start + len(raw) : start + len(raw) + 1] in ",.!"
            if (low in _NEGATORS and not interjection) or low.endswith("n't"):
                negators += 1
            if low in ("percent", "pct") and i - 1 in num_at:
                num_at[i - 1] += "%"
            elif low in _MULT and i - 1 in num_at and not num_at[i - 1].endswith("%"):
                num_at[i - 1] = _canon_number(str(Decimal(num_at[i - 1]) * _MULT[low]))
            elif (unit := _ALWAYS.get(low)) or (after_num and (unit := _AFTER_NUM.get(low))):
                units.append((i, unit))
            if low in _DIRECTIONAL or (low not in _STOP and low not in _NEGATORS):
                content.append(low)
            _number_word(low, i, tokens, num_at, run)
    bound: list[tuple[str, str]] = []
    for i, unit in units:
        if i - 1 in num_at:  # "100 km", "100km", "5 °C"
            bound.append((num_at[i - 1], unit))
        elif i + 1 in num_at and tokens[i][0] == "cur":  # "$100"
            bound.append((num_at[i + 1], unit))
    return _Parsed(
        numbers=Counter(num_at.values()),
        units=Counter(u for _, u in units),
        bound=Counter(bound),
        negators=negators,
        entities=frozenset(_entities(text, tokens)),
        words=frozenset(words),
        content=tuple(content),
        lower=text.lower(),
    )


def _number_word(
    low: str, i: int, tokens: list[tuple[str, str, int]], num_at: dict[int, str], run: list[int]
) -> None:
    """Read number words: "twenty one" → 21, "two thousand five" → 2005; "which one" is not 1."""
    value = _SMALL.get(low, _TENS.get(low))
    if low == "one" and (
        (i > 0 and _norm_word(tokens[i - 1][1]) in _ONE_PRONOUN_BEFORE)
        or (i + 1 < len(tokens) and tokens[i + 1][1].lower() in _ONE_PRONOUN_AFTER)
    ):
        value = None
    going = bool(run) and run[2] == i - 1
    if value is not None:
        cur = run[1] if going else -1
        if going and (cur % 100 == 0 or (value < 10 and cur % 100 >= 20 and cur % 10 == 0)):
            run[1] += value
        else:
            going = False
            run[:] = [0, value, i]
    elif low in _MULT:
        if not going:
            run[:] = [0, 1, i]
        if low == "hundred":
            run[1] = max(run[1], 1) * 100
        else:
            run[0], run[1] = run[0] + max(run[1], 1) * _MULT[low], 0
    else:
        return
    if going:
        del num_at[run[2]]
    run[2] = i
    num_at[i] = str(run[0] + run[1])


def _entities(text: str, tokens: list[tuple[str, str, int]]) -> set[str]:
    found = {m.group().rstrip(".,;:!?").lower() for m in _URL.finditer(text)}
    found |= {m.group().lower() for m in _EMAIL.finditer(text)}
    found |= {next(g for g in m.groups() if g).strip().lower() for m in _QUOTED.finditer(text)}
    found |= {
        m.group().lower()
        for m in _CODE.finditer(text)
        if max(map(len, m.group().split("."))) > 1  # not "e.g", "i.e"
    }
    for kind, raw, start in tokens:
        if kind != "word" or len(raw) < 2 or not raw[0].isupper():
            continue
        letters = [c for c in raw if c.isalpha()]
        if sum(c.isupper() for c in letters) >= 2 and raw.isupper():
            if raw.lower() not in _STOP and raw.lower() not in _ALWAYS:  # units: own guard
                found.add(raw.lower())  # acronym: NASA, AWS, EC2
        elif not _SENTENCE_END.search(text[max(0, start - 8) : start]):
            found.add(_norm_word(raw))  # capitalised, not at a sentence start
    return {e for e in found if e}


def _missing(entities: frozenset[str], other: _Parsed) -> list[str]:
    return sorted(
        e
        for e in entities
        if e not in other.entities
        and (e not in other.words if re.fullmatch(r"[\w']+", e) else e not in other.lower)
    )


def check_numbers(query: str, cached: str) -> str | None:
    """Numbers must agree as multisets: "top 5 films" ≠ "top 10 films"."""
    a, b = _parse(query).numbers, _parse(cached).numbers
    return None if a == b else f"numbers {sorted(a.elements())} vs {sorted(b.elements())}"


def check_units(query: str, cached: str) -> str | None:
    """Units/currencies and the number each is bound to: "100 km to miles" ≠ "100 miles to km"."""
    a, b = _parse(query), _parse(cached)
    if a.units != b.units:
        return f"units {sorted(a.units.elements())} vs {sorted(b.units.elements())}"
    if a.bound != b.bound:
        return f"number-unit {sorted(a.bound.elements())} vs {sorted(b.bound.elements())}"
    return None


def check_negation(query: str, cached: str) -> str | None:
    """Negator counts must agree: "is X safe" ≠ "is X not safe"."""
    a, b = _parse(query).negators, _parse(cached).negators
    return None if a == b else f"negators {a} vs {b}"


def check_entities(query: str, cached: str) -> str | None:
    """Each text's names, acronyms, quotes, identifiers, URLs must occur in the other."""
    a, b = _parse(query), _parse(cached)
    missing = _missing(a.entities, b) + _missing(b.entities, a)
    return f"entities not in both: {missing[:5]}" if missing else None


def check_order(query: str, cached: str) -> str | None:
    """Same content words, arguments swapped around a pivot: "A minus B" / "B minus A".

    Fails when the two texts use the same multiset of content words and some pair of them
    appears in opposite order with a third word between them in both texts. A clause moved
    as a block ("In Python, how do I X?" / "How do I X in Python?") has no such pivot and
    passes; ``order_strict`` fails on any reorder of the same words.
    """
    a, b = _occurrences(_parse(query).content), _occurrences(_parse(cached).content)
    if a == b or Counter(a) != Counter(b):
        return None
    pos_b = {w: i for i, w in enumerate(b)}
    order = [pos_b[w] for w in a]  # where each word of the query sits in the cached text
    for i in range(len(order)):
        for j in range(i + 2, len(order)):
            if order[i] > order[j]:  # inverted pair: is some word between them in both?
                low, high = order[j], order[i]
                pivots = [a[k] for k in range(i + 1, j) if low < order[k] < high]
                if pivots:
                    return f"swapped around {pivots[0].split('#')[0]!r}"
    return None


def check_order_strict(query: str, cached: str) -> str | None:
    """Same content words in any other order (blocks some clause-moving paraphrases)."""
    a, b = _parse(query).content, _parse(cached).content
    return "same words, different order" if a != b and Counter(a) == Counter(b) else None


def _occurrences(words: tuple[str, ...]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for word in words:
        seen[word] += 1
        out.append(f"{word}#{seen[word]}")
    return out


GUARDS: dict[str, Callable[[str, str], str | None]] = {
    "numbers": check_numbers,
    "units": check_units,
    "negation": check_negation,
    "entities": check_entities,
    "order": check_order,
    "order_strict": check_order_strict,
    "kinds": check_kinds,
    "contrast": check_contrast,
}


def guard_verdict(query: str, cached: str, guards: Sequence[str] = DEFAULT_GUARDS) -> GuardVerdict:
    """Run ``guards`` (names in ``GUARDS``) in order; return the first failure, else ok.

    Unknown names raise ``ValueError``. Cost: one regex pass per distinct text (cached).
    """
    for name in guards:
        check = GUARDS.get(name)
        if check is None:
            raise ValueError(f"unknown guard {name!r}; known: {sorted(GUARDS)}")
        detail = check(query, cached)
        if detail is not None:
            return GuardVerdict(ok=False, failed=name, detail=detail)
    return GuardVerdict(ok=True)
