"""Cascade checks: decide whether a tier's answer is good enough to return.

A check sees the OpenAI chat request body and the upstream's ``chat.completion`` body and
returns a ``Verdict`` (a score in 0..1, higher = more acceptable) or ``None`` to abstain.
Checks are built once from config specs by ``build_checks``; a tier's verdicts are reduced
to one score by ``combine``. The cascade compares that score with the tier's threshold.

Built in: ``heuristics`` and ``logprobs`` (here), ``format`` (``formats.py``) and ``judge``
(``judge.py``). Others plug in with ``register_check``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from thrifty.messages import last_user_text, text_of

log = logging.getLogger(__name__)

JudgeCall = Callable[[list[dict[str, Any]]], Awaitable[str]]
"""Send chat messages to the configured judge model (billed as a judge attempt); get text."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One check's opinion of one answer; ``reason`` is short and goes into the ledger."""

    check: str
    score: float
    reason: str
    hard_fail: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:  # also false for NaN
            raise ValueError(f"check {self.check!r}: score {self.score!r} is outside 0..1")


class Check(Protocol):
    """A named, stateless answer check; built from config, called once per tier answer.

    ``needs_logprobs`` makes the cascade ask the tier for logprobs. Return ``None`` to
    abstain when the check does not apply (no logprobs returned, no JSON asked, ...).
    """

    name: str
    needs_logprobs: bool

    async def __call__(
        self, request: dict[str, Any], response: dict[str, Any], judge: JudgeCall | None
    ) -> Verdict | None: ...


CheckFactory = Callable[[Mapping[str, Any]], Check]


def combine(verdicts: Iterable[Verdict | None]) -> tuple[float, str]:
    """Reduce a tier's verdicts to ``(score, reason)``.

    Any hard fail scores 0.0 and names only the hard failures. Otherwise the score is the
    minimum of the non-abstaining checks (an answer must satisfy every check) and the reason
    lists them all. ``None`` entries (abstentions) are skipped; nothing left -> 1.0.
    """
    given = [v for v in verdicts if v is not None]
    if not given:
        return 1.0, "no check applied"
    hard = [v for v in given if v.hard_fail]
    if hard:
        return 0.0, "; ".join(f"{v.check}: {v.reason}" for v in hard)
    return min(v.score for v in given), "; ".join(f"{v.check}: {v.reason}" for v in given)


# --- building from config -------------------------------------------------------------


class OptionReader:
    """Read a check's options from config, rejecting unknown keys and bad values.

    Errors are ``ValueError``s that name the check and the option. Call ``done()`` last.
    """

    def __init__(self, check: str, options: Mapping[str, Any]) -> None:
        self.check = check
        self._left = dict(options)
        self._known: list[str] = []

    def _fail(self, message: str) -> ValueError:
        return ValueError(f"cascade check {self.check!r}: {message}")

    def number(self, key: str, default: float, *, low: float, high: float | None = None) -> float:
        self._known.append(key)
        value = self._left.pop(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(f"option {key!r} must be a number, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise self._fail(f"option {key!r} must be {bounds}, got {value!r}")
        return float(value)

    def integer(self, key: str, default: int, *, low: int) -> int:
        value = self.number(key, default, low=low)
        if not value.is_integer():
            raise self._fail(f"option {key!r} must be a whole number, got {value!r}")
        return int(value)

    def strings(self, key: str) -> tuple[str, ...]:
        self._known.append(key)
        value = self._left.pop(key, ())
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise self._fail(f"option {key!r} must be a list of strings, got {value!r}")
        if not all(isinstance(item, str) and item for item in value):
            raise self._fail(f"option {key!r} must hold non-empty strings, got {value!r}")
        return tuple(value)

    def done(self) -> None:
        if self._left:
            known = ", ".join(self._known) or "none"
            raise self._fail(f"unknown option {sorted(self._left)[0]!r} (known: {known})")


def _format_factory(options: Mapping[str, Any]) -> Check:
    from thrifty.cascade.formats import FormatCheck  # lazy: formats imports this module

    return FormatCheck.from_options(options)


def _judge_factory(options: Mapping[str, Any]) -> Check:
    from thrifty.cascade.judge import JudgeCheck  # lazy: judge imports this module

    return JudgeCheck.from_options(options)


def register_check(name: str, factory: CheckFactory, *, replace: bool = False) -> None:
    """Make ``name`` usable in config specs; ``factory(options)`` builds the check.

    The factory raises ``ValueError`` for bad options. A check that calls the judge sets a
    ``needs_judge = True`` attribute so ``build_checks`` can refuse it without a judge model.
    """
    if name in _REGISTRY and not replace:
        raise ValueError(f"cascade check {name!r} is already registered")
    _REGISTRY[name] = factory


def registered_checks() -> list[str]:
    return sorted(_REGISTRY)


def build_checks(
    specs: Sequence[str | Mapping[str, Any]], *, has_judge: bool = False
) -> list[Check]:
    """Build checks from config specs: ``"heuristics"`` or ``{"name": "logprobs", ...}``.

    The other keys of a mapping are the check's options. Raises ``ValueError`` naming the
    spec for an unknown name, a bad option, a duplicate, or a judge check when no judge
    model is configured (``has_judge=False``).
    """
    checks: list[Check] = []
    seen: set[str] = set()
    for spec in specs:
        if isinstance(spec, str):
            name, options = spec, {}
        elif isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
            name, options = spec["name"], {k: v for k, v in spec.items() if k != "name"}
        else:
            raise ValueError(f"cascade check spec {spec!r}: expected a name or {{name: ...}}")
        factory = _REGISTRY.get(name)
        if factory is None:
            known = ", ".join(registered_checks())
            raise ValueError(f"unknown cascade check {name!r} (known: {known})")
        if name in seen:
            raise ValueError(f"cascade check {name!r} is listed twice")
        seen.add(name)
        check = factory(options)
        if getattr(check, "needs_judge", False) and not has_judge:
            raise ValueError(f"the {name} check needs cascade.judge_model")
        checks.append(check)
    return checks


# --- reading the bodies ---------------------------------------------------------------


def question_text(request: Mapping[str, Any]) -> str:
    """The text of the request's last user message (what the answer must answer)."""
    return last_user_text(request.get("messages") or [])


def first_choice(response: Mapping[str, Any]) -> dict[str, Any] | None:
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def answer_message(response: Mapping[str, Any]) -> dict[str, Any]:
    choice = first_choice(response) or {}
    message = choice.get("message")
    return message if isinstance(message, dict) else {}


# --- heuristics -----------------------------------------------------------------------

DEFAULT_REFUSALS: tuple[str, ...] = (
    r"\bI(?:'m| am) sorry,? but I (?:can(?:'t| ?not)|am unable|'m unable|won't|will not)",
    r"\bI (?:can(?:'t| ?not)|am unable to|'m unable to|won't|will not) (?:help|assist|"
    r"comply|provide|fulfil|do that|answer|support|engage)",
    r"\bas an AI(?: language model| assistant)?,? I (?:can(?:'t| ?not)|don't|do not|am not"
    r" able|am unable)",
    r"\bI(?:'m| am) not able to (?:help|assist|provide|comply|answer)",
    r"\bI must (?:decline|refuse)",
    r"\bI(?:'m| am) afraid I (?:can(?:'t|not)|won't)",
)
"""Refusal openings, matched case-insensitively in the first ``REFUSAL_WINDOW`` chars."""

REFUSAL_WINDOW = 300  # a refusal opens the answer; "I cannot" deep in a long answer is fine

ELABORATE = re.compile(
    r"\b(?:explain|describe|write|compose|draft|summari[sz]e|summary|compare|contrast|discuss|"
    r"elaborate|outline|list|analy[sz]e|essay|article|story|poem|detail(?:ed|s)?|step[- ]by[- ]"
    r"step|steps|implement|refactor|translate|rewrite|why|how (?:do|does|did|can|could|should|"
    r"would|to)|pros and cons)\b",
    re.IGNORECASE,
)
"""Words that ask for more than a one-word fact; only such questions get a length floor."""


class HeuristicsCheck:
    """Cheap structural checks: truncation, empty or null answers, refusals, too short.

    A short answer to a short factual question is fine ("what is 2+2" -> "4"); only a
    question that asks for elaboration (see ``ELABORATE``) must get at least
    ``max(min_chars, min_ratio * question chars)`` characters, capped at
    ``max_required_chars`` (a one-paragraph summary of a long document is fine).
    """

    name = "heuristics"
    needs_logprobs = False

    def __init__(
        self,
        *,
        min_chars: int = 40,
        min_ratio: float = 0.05,
        max_required_chars: int = 400,
        refusal_patterns: Sequence[str] = (),
    ) -> None:
        self.min_chars = min_chars
        self.min_ratio = min_ratio
        self.max_required_chars = max_required_chars
        patterns = (*DEFAULT_REFUSALS, *refusal_patterns)
        self.refusals = [re.compile(p, re.IGNORECASE) for p in patterns]

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> HeuristicsCheck:
        read = OptionReader(cls.name, options)
        min_chars = read.integer("min_chars", 40, low=0)
        min_ratio = read.number("min_ratio", 0.05, low=0.0, high=10.0)
        max_required = read.integer("max_required_chars", 400, low=0)
        patterns = read.strings("refusal_patterns")
        read.done()
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"cascade check 'heuristics': bad refusal pattern {pattern!r}: {exc}"
                ) from None
        return cls(
            min_chars=min_chars,
            min_ratio=min_ratio,
            max_required_chars=max_required,
            refusal_patterns=patterns,
        )

    async def __call__(
        self, request: dict[str, Any], response: dict[str, Any], judge: JudgeCall | None
    ) -> Verdict | None:
        return self.check(request, response)

    def check(self, request: Mapping[str, Any], response: Mapping[str, Any]) -> Verdict | None:
        """The same as calling the check, synchronously (nothing here awaits)."""
        choice = first_choice(response)
        if choice is None:
            return self._fail("no choices in the response", hard=True)
        finish = choice.get("finish_reason")
        if finish == "length":
            return self._fail("answer truncated (finish_reason=length)", hard=True)
        if finish == "content_filter":
            return self._fail("answer cut by the content filter", hard=True)
        message = answer_message(response)
        if isinstance(message.get("refusal"), str) and message["refusal"].strip():
            return self._fail(f"model refused: {_clip(message['refusal'])}")
        content = message.get("content")
        text = text_of(content).strip()
        if not text and message.get("tool_calls"):
            return None  # a tool-call answer: nothing textual to judge here
        if content is None:
            return self._fail("no content and no tool calls", hard=True)
        if not text:
            return self._fail("empty answer", hard=True)
        opening = text[:REFUSAL_WINDOW].replace("\u2019", "'")
        for pattern in self.refusals:
            if match := pattern.search(opening):
                return self._fail(f"refusal: {match.group(0)!r}")
        return self._length_verdict(question_text(request), text)

    def _length_verdict(self, question: str, answer: str) -> Verdict:
        if not ELABORATE.search(question):
            return Verdict(self.name, 1.0, "ok (short answers are fine for this question)")
        wanted = max(self.min_chars, self.min_ratio * len(question))
        wanted = int(min(wanted, self.max_required_chars))
        if len(answer) >= wanted:
            return Verdict(self.name, 1.0, f"ok ({len(answer)} chars)")
        reason = f"too short: {len(answer)} chars, the question asks for >= {wanted}"
        return Verdict(self.name, len(answer) / wanted, reason)

    def _fail(self, reason: str, *, hard: bool = False) -> Verdict:
        return Verdict(self.name, 0.0, reason, hard_fail=hard)


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- logprobs -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Confidence:
    """Token-level confidence of an answer: exp(mean logprob) and exp(min logprob)."""

    mean_prob: float
    min_prob: float
    tokens: int


def logprob_confidence(response: Mapping[str, Any]) -> Confidence | None:
    """Confidence from ``choices[0].logprobs.content``; ``None`` when there are none."""
    logprobs = (first_choice(response) or {}).get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return None
    values = [
        float(t["logprob"])
        for t in content
        if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)
    ]
    if not values:
        return None
    mean = sum(values) / len(values)
    return Confidence(mean_prob=math.exp(mean), min_prob=math.exp(min(values)), tokens=len(values))


class LogprobsCheck:
    """Score = exp(mean token logprob): how sure the model was of its own answer.

    ``min_mean_prob`` only shapes the reason text; the tier's threshold decides.
    """

    name = "logprobs"
    needs_logprobs = True

    def __init__(self, *, min_mean_prob: float = 0.5) -> None:
        self.min_mean_prob = min_mean_prob

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LogprobsCheck:
        read = OptionReader(cls.name, options)
        min_mean_prob = read.number("min_mean_prob", 0.5, low=0.0, high=1.0)
        read.done()
        return cls(min_mean_prob=min_mean_prob)

    async def __call__(
        self, request: dict[str, Any], response: dict[str, Any], judge: JudgeCall | None
    ) -> Verdict | None:
        confidence = logprob_confidence(response)
        if confidence is None:
            log.debug("logprobs check abstains: no logprobs in the response")
            return None
        mean = confidence.mean_prob
        relation = ">=" if mean >= self.min_mean_prob else "<"
        reason = (
            f"mean token prob {mean:.2f} {relation} {self.min_mean_prob:.2f} "
            f"(min {confidence.min_prob:.2f}, {confidence.tokens} tokens)"
        )
        return Verdict(self.name, min(1.0, mean), reason)


# --- length floor for every prompt ------------------------------------------------------


class MinLengthCheck:
    """ "An answer shorter than ``chars`` characters escalates", whatever the question.

    ``heuristics`` asks for length only when the question asks for elaboration; this check
    is the plain rule for traffic where any short answer is a bad one. A tool-call answer
    abstains (there is no text to measure). A shorter answer is a hard fail, so the tier's
    threshold cannot accept it.
    """

    name = "min_length"
    needs_logprobs = False

    def __init__(self, *, chars: int) -> None:
        self.chars = chars

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MinLengthCheck:
        read = OptionReader(cls.name, options)
        chars = read.integer("chars", 0, low=1)
        read.done()
        return cls(chars=chars)

    async def __call__(
        self, request: dict[str, Any], response: dict[str, Any], judge: JudgeCall | None
    ) -> Verdict | None:
        message = answer_message(response)
        text = text_of(message.get("content")).strip()
        if not text and message.get("tool_calls"):
            return None
        if len(text) >= self.chars:
            return Verdict(self.name, 1.0, f"ok ({len(text)} chars >= {self.chars})")
        reason = f"too short: {len(text)} chars < {self.chars}"
        return Verdict(self.name, len(text) / self.chars, reason, hard_fail=True)


_REGISTRY: dict[str, CheckFactory] = {
    "heuristics": HeuristicsCheck.from_options,
    "min_length": MinLengthCheck.from_options,
    "format": _format_factory,
    "logprobs": LogprobsCheck.from_options,
    "judge": _judge_factory,
}
"""Check name -> factory (the module's only state); extended by ``register_check``."""
