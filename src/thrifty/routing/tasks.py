"""Task classifier: what kind of job a prompt is, so the router can pick candidates per task.

Labels (``TASKS``): chat, code, math (maths and reasoning), summarization, translation,
extraction (extraction and classification), creative. Two classifiers, one interface
(``classify(text) -> TaskPrediction``):

* :class:`RuleTaskClassifier`: keywords, regexes, code fences and language names, built
  from a plain dict (``DEFAULT_RULES`` is the naive default everyone writes). ≪ 1 ms.
* :class:`LearnedTaskClassifier`: the shipped static embedder + a linear softmax model
  (``routing/data/task_classifier.npz``, trained by ``scripts/train_task_classifier.py``).
  There is no labelled summarization or translation data, so the model knows only the other
  five labels; when the rules say summarization or translation with confidence ≥
  ``rule_override`` the rules decide. Measured accuracy is in ``docs/embeddings.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from thrifty.embeddings import StaticEmbedder

TASKS: tuple[str, ...] = (
    "chat",
    "code",
    "math",
    "summarization",
    "translation",
    "extraction",
    "creative",
)
WEIGHTS_PATH = Path(__file__).resolve().parent / "data" / "task_classifier.npz"

_LANGS = (
    "english|french|spanish|german|italian|portuguese|dutch|russian|ukrainian|polish|czech|"
    "swedish|norwegian|danish|finnish|greek|turkish|arabic|hebrew|persian|farsi|hindi|urdu|"
    "bengali|chinese|mandarin|cantonese|japanese|korean|vietnamese|thai|indonesian|malay|"
    "swahili|latin|romanian|hungarian|catalan|tagalog"
)
_CODE_LANGS = (
    "python", "javascript", "typescript", "java", "c++", "c#", "golang", "rust", "ruby", "php",
    "kotlin", "swift", "scala", "haskell", "bash", "powershell", "sql", "html", "css", "react",
    "django", "flask", "pandas", "numpy", "matlab", "vba", "zig", "lua",
)  # fmt: skip

# Each label: keywords (whole words/phrases, case-insensitive) and regexes, each with a
# weight. A label's score is the sum of the weights of the distinct rules that match.
# fmt: off
DEFAULT_RULES: dict[str, Any] = {
    "default": "chat",
    "default_score": 1.0,
    "scan_chars": 2000,  # look at the head and the tail of long prompts, not the middle
    "labels": {
        "code": {
            "keywords": {
                "code": 1.0, "function": 1.0, "script": 1.0, "bug": 1.0, "debug": 1.5,
                "compile": 1.0, "refactor": 1.5, "implement": 1.0, "algorithm": 1.0,
                "program": 1.0, "api": 0.5, "class": 0.5, "regex": 1.5, "unit test": 1.5,
                "stack trace": 1.5, "exception": 1.0, "syntax": 1.0,
                **dict.fromkeys(_CODE_LANGS, 1.5),
            },
            "patterns": {
                r"```": 3.0,
                r"\b(?:def|fn|func)\s+\w+\s*\(|\bpublic\s+(?:static|class|void)\b": 2.0,
                r"^\s*(?:import|from)\s+[\w.]+|\b(?:const|let|var)\s+\w+\s*=": 1.5,
                r"#include|console\.log|System\.out|Traceback \(most recent": 3.0,
                r"\bselect\b.+\bfrom\b": 1.0,
            },
        },
        "math": {
            "keywords": {
                "calculate": 1.5, "compute": 1.0, "solve": 1.5, "equation": 2.0,
                "integral": 2.0, "derivative": 2.0, "probability": 2.0, "prove": 1.5,
                "theorem": 2.0, "math": 2.0, "how many": 1.0, "percent": 1.0, "riddle": 1.5,
                "puzzle": 1.5, "logic": 1.0, "average": 1.0, "sum": 1.0, "expected value": 2.0,
                "matrix": 1.0, "graph": 0.5, "estimate": 0.5, "number of": 0.5,
            },
            "patterns": {
                r"\d\s*[-+*/^×÷]\s*\d": 2.0,
                r"\b[xyn]\s*(?:\^|\*\*)\s*\d|\\frac|\\sqrt|\\int": 2.5,
                r"\bwhat is \d": 1.5,
                r"\d\s*%": 1.0,
            },
        },
        "summarization": {
            "keywords": {
                "summarize": 3.0, "summarise": 3.0, "summary": 2.5, "tl;dr": 3.0,
                "tldr": 3.0, "key points": 1.5, "main points": 1.5, "condense": 1.5,
                "in a nutshell": 1.5, "gist": 1.5,
            },
            "patterns": {r"\bin (?:\d+|one|two|three|five) (?:sentences?|bullet|words)": 1.0},
        },
        "translation": {
            "keywords": {"translate": 3.0, "translation": 2.5, "translator": 2.0},
            "patterns": {
                rf"\b(?:into|to|in)\s+(?:{_LANGS})\b": 1.0,
                rf"\bfrom\s+(?:{_LANGS})\s+(?:in)?to\b": 2.0,
                rf"\bhow do (?:you|i) say\b.+\bin (?:{_LANGS})\b": 2.5,
            },
        },
        "extraction": {
            "keywords": {
                "extract": 2.5, "classify": 2.0, "categorize": 2.0, "categorise": 2.0,
                "sentiment": 2.0, "named entities": 2.5, "parse": 1.0, "label each": 2.0,
                "identify all": 1.5, "list all": 1.0, "json": 1.0,
            },
            "patterns": {r"\bfrom (?:the|this) (?:following )?(?:text|passage|document)": 1.0},
        },
        "creative": {
            "keywords": {
                "story": 2.0, "poem": 2.5, "haiku": 2.5, "limerick": 2.5, "song": 1.5,
                "lyrics": 2.0, "fiction": 2.0, "screenplay": 2.0, "roleplay": 2.0,
                "role-play": 2.0, "imagine": 1.0, "character": 1.0, "creative": 1.5,
                "blog post": 1.5, "essay": 1.0, "slogan": 1.5, "pretend": 1.5, "act as": 1.0,
                "letter": 1.0, "email": 1.0, "monologue": 2.0, "plot": 1.0, "speech": 1.0,
                "sonnet": 2.5, "tale": 1.5, "narrative": 1.5, "rap": 1.5, "tweet": 1.0,
            },
            "patterns": {r"\bwrite (?:a|an|me a)\b": 1.0, r"\byou are (?:a|an)\b": 1.0},
        },
        "chat": {
            "keywords": {"explain": 0.5, "advice": 1.0, "recommend": 0.5, "tips": 1.0},
            "patterns": {r"^\s*(?:what|why|how|who|when|where|can|should)\b": 0.5},
        },
    },
}
# fmt: on


@dataclass(frozen=True, slots=True)
class TaskPrediction:
    """``task`` is the arg-max of ``scores`` (a distribution over ``TASKS``)."""

    task: str
    confidence: float
    scores: dict[str, float]
    by: str = "rules"  # which classifier decided: "rules" or "model"


class TaskClassifier(Protocol):
    def classify(self, text: str) -> TaskPrediction: ...


def _prediction(
    scores: Mapping[str, float], by: str, labels: Sequence[str] = TASKS
) -> TaskPrediction:
    total = sum(scores.values()) or 1.0
    dist = {t: float(scores.get(t, 0.0)) / total for t in labels}
    task = max(labels, key=lambda t: dist[t])  # ties: the earlier (cheaper to get wrong) label
    return TaskPrediction(task, dist[task], dist, by)


def with_labels(
    base: Mapping[str, Any] | None, labels: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``base`` rules (default: ``DEFAULT_RULES``) plus ``labels``, added rule by rule.

    A label of ``labels`` that is a new name becomes a label of its own; one that exists
    keeps its rules and gains these (a keyword or pattern given again takes the new
    weight). Nothing is replaced wholesale, so a user's own label never loses the
    built-in ones.

    >>> rules = with_labels(None, {"legal": {"keywords": {"contract": 2.0}}})
    >>> RuleTaskClassifier(rules).classify("Review this contract clause").task
    'legal'
    """
    base = DEFAULT_RULES if base is None else base
    merged = {**base, "labels": {k: dict(v) for k, v in base.get("labels", {}).items()}}
    for label, spec in labels.items():
        current = merged["labels"].setdefault(label, {})
        for kind in ("keywords", "patterns"):
            added = dict(_weighted(spec.get(kind) or {}))
            if added:
                current[kind] = {**dict(_weighted(current.get(kind) or {})), **added}
    return merged


_WORD = re.compile(r"\w+")


class PredictionMemo:
    """A bounded, thread-safe LRU of task predictions, one for the whole process.

    Why process-wide: ``thrifty tune`` replays the same prompts through ~1,200 fresh
    runtimes (each builds its own router and classifier), so a memo per classifier
    never hits, and classifying every request of every replay was a third of the tune
    (issue #19); a gateway sees repeated prompts too. Why not shared prepared routing
    decisions instead: a classification depends on the rules and the weights alone,
    whatever else the candidate changes (cascade, cache, compression), so one memo
    serves every replay, the tuner's task split and the gateway, with nothing to
    invalidate. Keys are a keyed 16-byte BLAKE2b of the classifier's input, the key
    being the classifier's fingerprint (a digest of everything that decides its output):
    two classifiers with different rules never share an entry, and a 100k-character
    prompt is held as 16 bytes. What goes in and each hit are copies, so a caller cannot
    change what the next one gets.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[bytes, TaskPrediction] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> TaskPrediction | None:
        with self._lock:
            found = self._data.get(key)
            if found is None:
                return None
            self._data.move_to_end(key)
        return _copy(found)

    def put(self, key: bytes, prediction: TaskPrediction) -> None:
        kept = _copy(prediction)  # the caller keeps its own
        with self._lock:
            self._data[key] = kept
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def _copy(p: TaskPrediction) -> TaskPrediction:
    return TaskPrediction(p.task, p.confidence, dict(p.scores), p.by)


#: Enough for a 10,000-prompt tune to hit on every replay (≈ 0.6 kB an entry).
PREDICTIONS = PredictionMemo(16_384)


def _digest(fingerprint: bytes, *parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16, key=fingerprint)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))  # (a, bc) and (ab, c) differ
        h.update(part)
    return h.digest()


def _fingerprint(*parts: object) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=32).digest()


class RuleTaskClassifier:
    """Scores each label by the weights of its matching rules; softmax over the scores.

    ``rules`` has the shape of ``DEFAULT_RULES`` (labels missing from it keep no rules;
    a label outside ``TASKS`` is a user's own, scored like the others: see
    :func:`with_labels`). Keywords are whole-word, case-insensitive; patterns are
    regexes (case-insensitive, multiline). Texts longer than ``2 × scan_chars`` are scanned
    at the head and the tail only, which keeps a 30k-character prompt well under 1 ms.
    """

    def __init__(self, rules: Mapping[str, Any] | None = None) -> None:
        rules = DEFAULT_RULES if rules is None else rules
        self.default = str(rules.get("default", "chat"))
        self.default_score = float(rules.get("default_score", 1.0))
        self.scan_chars = int(rules.get("scan_chars", 2000))
        own = [label for label in rules.get("labels", {}) if label not in TASKS]
        self.labels: tuple[str, ...] = (*TASKS, *own)
        if self.default not in self.labels:
            raise ValueError(f"unknown default task label: {self.default}")
        # One-word keywords are looked up in the text's word set; phrases are found with
        # str.find and a boundary check: both far cheaper than one regex per keyword.
        self._words: dict[str, list[tuple[str, float]]] = {}
        self._phrases: list[tuple[str, str, float]] = []
        self._patterns: list[tuple[str, re.Pattern[str], float]] = []
        for label, spec in rules.get("labels", {}).items():
            for keyword, weight in _weighted(spec.get("keywords", {})):
                key = keyword.lower()
                if _WORD.fullmatch(key):
                    self._words.setdefault(key, []).append((label, weight))
                else:
                    self._phrases.append((label, key, weight))
            for pattern, weight in _weighted(spec.get("patterns", {})):
                flags = re.IGNORECASE | re.MULTILINE
                self._patterns.append((label, re.compile(pattern, flags), weight))
        self.fingerprint = _fingerprint(
            "rules", self.default, self.default_score, self.scan_chars, self.labels,
            sorted(self._words.items()), self._phrases,
            [(label, p.pattern, p.flags, w) for label, p, w in self._patterns],
        )  # fmt: skip

    def scanned(self, text: str) -> str:
        """The part of ``text`` the rules look at (all of it, or its head and tail)."""
        if len(text) > 2 * self.scan_chars:
            return text[: self.scan_chars] + "\n" + text[-self.scan_chars :]
        return text

    def raw_scores(self, text: str) -> dict[str, float]:
        """Summed rule weights per label, before the softmax (for debugging rules)."""
        text = self.scanned(text)
        lower = text.lower()
        scores = dict.fromkeys(self.labels, 0.0)
        for word in set(_WORD.findall(lower)) & self._words.keys():
            for label, weight in self._words[word]:
                scores[label] += weight
        for label, phrase, weight in self._phrases:
            if _has_phrase(lower, phrase):
                scores[label] += weight
        for label, pattern, weight in self._patterns:
            if pattern.search(text):
                scores[label] += weight
        scores[self.default] += self.default_score
        return scores

    def classify(self, text: str) -> TaskPrediction:
        """The label of ``text`` (remembered in :data:`PREDICTIONS`)."""
        key = _digest(self.fingerprint, self.scanned(text).encode())
        found = PREDICTIONS.get(key)
        if found is None:
            found = self.classify_uncached(text)
            PREDICTIONS.put(key, found)
        return found

    def classify_uncached(self, text: str) -> TaskPrediction:
        raw = self.raw_scores(text)
        top = max(raw.values())
        return _prediction({t: math.exp(s - top) for t, s in raw.items()}, "rules", self.labels)


def _has_phrase(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` not glued to a word character on either side."""
    start = text.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = text.find(phrase, start + 1)
    return False


def _weighted(spec: Mapping[str, float] | Sequence[str]) -> list[tuple[str, float]]:
    """Rules are ``{rule: weight}`` or a plain list (each weight 1.0)."""
    if isinstance(spec, Mapping):
        return [(str(k), float(w)) for k, w in spec.items()]
    return [(str(k), 1.0) for k in spec]


@dataclass(frozen=True, slots=True)
class _Model:
    labels: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (dims, len(labels))
    bias: np.ndarray
    meta: dict[str, Any]
    digest: bytes  # of the labels, meta and weights: part of the classifier's fingerprint


class LearnedTaskClassifier:
    """Embedding → standardise → linear softmax; rules decide the labels it was not taught.

    Weights load on first use, once, under a lock. ``classify(text, embedding=...)``
    reuses an embedding the caller already has (the router embeds the prompt anyway).
    """

    def __init__(
        self,
        weights_path: Path | str | None = None,
        *,
        embedder: StaticEmbedder | None = None,
        rules: RuleTaskClassifier | None = None,
        rule_override: float = 0.6,
    ) -> None:
        self._path = Path(weights_path) if weights_path is not None else WEIGHTS_PATH
        self._embedder = embedder
        self.rules = rules or RuleTaskClassifier()
        self.rule_override = rule_override
        self._lock = threading.Lock()
        self._model: _Model | None = None
        self._fingerprint_cache: bytes | None = None

    @property
    def meta(self) -> dict[str, Any]:
        """How the shipped weights were trained (data, split, held-out accuracy)."""
        return self._load().meta

    def _load(self) -> _Model:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = _read_model(self._path)
                model = self._model
        return model

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._embedder is None:
            from thrifty.embeddings import get_embedder

            self._embedder = get_embedder()
        return self._embedder.embed(texts)

    def model_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Softmax probabilities over ``labels`` for a batch of embeddings."""
        import numpy as np

        m = self._load()
        logits = ((embeddings - m.mean) / m.scale) @ m.weights + m.bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def classify(self, text: str, embedding: np.ndarray | None = None) -> TaskPrediction:
        return self.classify_many([text], None if embedding is None else embedding[None, :])[0]

    def classify_many(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> list[TaskPrediction]:
        """Classify a batch (one embedding call for all of them); remembered in
        :data:`PREDICTIONS` by the text the rules scan and the embedding."""
        if embeddings is None:
            embeddings = self._embed(texts)
        fingerprint = self._fingerprint()
        keys = [
            _digest(fingerprint, self.rules.scanned(text).encode(), vector.tobytes())
            for text, vector in zip(texts, embeddings, strict=True)
        ]
        out = [PREDICTIONS.get(key) for key in keys]
        todo = [i for i, found in enumerate(out) if found is None]
        if todo:
            fresh = self.classify_uncached([texts[i] for i in todo], embeddings[todo])
            for i, prediction in zip(todo, fresh, strict=True):
                PREDICTIONS.put(keys[i], prediction)
                out[i] = prediction
        return [p for p in out if p is not None]

    def classify_uncached(
        self, texts: Sequence[str], embeddings: np.ndarray
    ) -> list[TaskPrediction]:
        m = self._load()
        probs = self.model_scores(embeddings)
        out: list[TaskPrediction] = []
        for text, row in zip(texts, probs, strict=True):
            ruled = self.rules.classify(text)
            if ruled.task not in m.labels and ruled.confidence >= self.rule_override:
                out.append(ruled)
            else:
                out.append(_prediction(dict(zip(m.labels, row.tolist(), strict=True)), "model"))
        return out

    def _fingerprint(self) -> bytes:
        fingerprint = self._fingerprint_cache
        if fingerprint is None:
            m = self._load()
            fingerprint = _fingerprint(
                "learned", self.rules.fingerprint, self.rule_override, m.digest
            )
            self._fingerprint_cache = fingerprint
        return fingerprint


def _read_model(path: Path) -> _Model:
    """The weights at ``path``, read once per version of the file (``learned.load_cached``:
    every router of a tune builds its own classifier; the arrays are shared read-only)."""
    from thrifty.learned import load_cached

    def build(data: Any) -> _Model:
        import numpy as np

        labels = tuple(str(x) for x in data["labels"])
        if set(labels) - set(TASKS):
            raise ValueError(f"{path}: labels {labels} not all in {TASKS}")
        arrays = {k: data[k].astype(np.float32) for k in ("mean", "scale", "weights", "bias")}
        meta = str(data["meta"])
        digest = hashlib.blake2b(repr(labels).encode() + meta.encode(), digest_size=32)
        for array in arrays.values():
            array.flags.writeable = False
            digest.update(array.tobytes())
        return _Model(labels=labels, **arrays, meta=json.loads(meta), digest=digest.digest())

    return load_cached(path, build, "task_classifier")
