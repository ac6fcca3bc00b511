"""The compression passes over a request's context, without any I/O (the stage adds the
summariser calls and the ledger): used by the stage, the bench and library callers.

Example::

    from thrifty.embeddings import get_embedder

    c = Compressor(CompressionConfig(), "gpt-4o-mini", get_embedder().embed)
    short = c.compress_text(document, "Who won the first Nobel prize in physics?", ratio=3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from thrifty.compression.config import CompressionConfig
from thrifty.compression.extractive import compress_extractive
from thrifty.compression.lossless import lossless
from thrifty.compression.scoring import Embed
from thrifty.compression.segments import Segment, split_segments
from thrifty.tokens import encoding_for_model


@dataclass(slots=True)
class Part:
    """One compressible message on its way through the passes."""

    index: int
    role: str
    original: str
    tokens_before: int
    segments: list[Segment]
    method: str = "none"
    extractive: bool = False
    """Chosen for the extractive pass (long enough, not summarised, allowed by the cache rule)."""
    cached_prefix: bool = False
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


class Compressor:
    """Lossless and extractive passes for one model's tokenizer."""

    def __init__(self, config: CompressionConfig, model: str, embed: Embed | None = None) -> None:
        self.config = config
        self._encoding, _ = encoding_for_model(model)
        self._embed = embed

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text))

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count(t) for t in texts]

    def prepare(self, index: int, role: str, text: str, seen: set[str]) -> Part:
        """Segment one message and run the lossless pass (``seen``: paragraphs so far)."""
        segments = split_segments(text)
        if self.config.lossless:
            segments = lossless(segments, seen)
        part = Part(index, role, text, self.count(text), segments)
        part.method = "lossless" if self.config.lossless else "none"
        return part

    def extract(self, parts: Sequence[Part], query: str, ratio: float | None = None) -> None:
        """Run the extractive pass over the parts marked ``extractive``, jointly."""
        chosen = [p for p in parts if p.extractive]
        if not chosen:
            return
        result = compress_extractive(
            [p.segments for p in chosen], query, self.config.extractive, self.count_many,
            self._embed, ratio=ratio,
        )  # fmt: skip
        for part, segments in zip(chosen, result, strict=True):
            part.segments = segments
            part.method = "extractive"

    def compress_text(self, text: str, query: str, *, ratio: float | None = None) -> str:
        """One context text through the lossless and extractive passes."""
        part = self.prepare(0, "user", text, set())
        part.extractive = self.config.extractive.enabled
        self.extract([part], query, ratio)
        return part.text
