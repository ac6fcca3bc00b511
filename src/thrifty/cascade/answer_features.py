"""What the verifier sees in an answer beyond its words: shape signals of a bad answer.

A model's weak answer tends to show it: a refusal or a hedge, far shorter (or much
longer) than the question calls for, cut off mid-sentence, repeating itself, no code
where the prompt asked for code, no number where it asked for one. Each is one raw
number here; the verifier standardises them on its training answers.
"""

from __future__ import annotations

import math
import re

import numpy as np

from thrifty.cascade.checks import DEFAULT_REFUSALS, ELABORATE, REFUSAL_WINDOW

_REFUSAL = re.compile("|".join(f"(?:{p})" for p in DEFAULT_REFUSALS), re.IGNORECASE)
_HEDGE = re.compile(
    r"\b(?:I(?:'m| am) not (?:sure|certain)|I don't know|I do not know|it depends|"
    r"cannot be determined|not enough information|unclear|I (?:think|believe|guess)|"
    r"might|may be|possibly|perhaps|as of my (?:last|knowledge)|knowledge cutoff|"
    r"I don't have (?:access|information)|consult (?:a|an|your) )",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_LIST_ITEM = re.compile(r"(?m)^\s*(?:[-*•]|\d+[.)])\s")
_CODEISH = re.compile(r"```|\bdef |\bfunction\b|\bclass |;\s*$|\{\s*$", re.M)
_ASKS_CODE = re.compile(
    r"```|\b(?:code|function|script|program|implement|python|javascript|sql|regex|bash)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")

ANSWER_FEATURE_NAMES = (
    "log_chars", "log_ratio_to_prompt", "refusal", "hedges", "cut_off", "repetition",
    "list_items", "numbers", "code", "code_asked_missing", "numbers_asked_missing",
    "short_for_elaborate", "headers", "empty",
)  # fmt: skip


def answer_features(prompt: str, answer: str) -> np.ndarray:
    """The raw signals of ``answer`` to ``prompt`` (see ``ANSWER_FEATURE_NAMES``)."""
    stripped = answer.strip()
    words = [w.lower() for w in _WORD.findall(answer)]
    unique = len(set(words)) / len(words) if words else 1.0
    code = bool(_CODEISH.search(answer))
    numbers = len(_NUMBER.findall(answer))
    prompt_numbers = len(_NUMBER.findall(prompt))
    elaborate = bool(ELABORATE.search(prompt))
    return np.array(
        [
            math.log1p(len(answer)),
            math.log((len(answer) + 20) / (len(prompt) + 20)),
            float(bool(_REFUSAL.search(answer[:REFUSAL_WINDOW].replace("\u2019", "'")))),
            math.log1p(len(_HEDGE.findall(answer))),
            float(bool(stripped) and stripped[-1] not in ".!?)]}`\"'*:|>"),
            1.0 - unique if len(words) >= 20 else 0.0,
            math.log1p(len(_LIST_ITEM.findall(answer))),
            math.log1p(numbers),
            float(code),
            float(bool(_ASKS_CODE.search(prompt)) and not code),
            float(prompt_numbers > 0 and numbers == 0),
            float(elaborate and len(stripped) < 200),
            math.log1p(answer.count("\n#")),
            float(not stripped),
        ],
        dtype=np.float64,
    )
