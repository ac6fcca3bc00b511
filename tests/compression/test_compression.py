"""The compression passes on their own: segments, lossless, extractive, prompt-cache rule."""

from __future__ import annotations

import json

import pytest

from thrifty.compression.compressor import Compressor
from thrifty.compression.config import CompressionConfig
from thrifty.compression.lossless import lossless, minify_json
from thrifty.compression.prompt_cache import PrefixTracker, extractive_beats_cache
from thrifty.compression.segments import split_segments
from thrifty.compression.units import split_units
from thrifty.config import parse_config
from thrifty.embeddings import get_embedder
from thrifty.errors import ConfigError
from thrifty.pricing.catalogue import ModelPrice

CODE = "```python\ndef  f(x):\n\n\n    return   x  *  2\n```"
PLACES = ["Varna", "Tartu", "Leiria", "Ghent", "Bergen", "Lecce", "Kaunas", "Split", "Brno",
          "Arhus", "Olomouc", "Graz", "Cluj", "Nantes", "Umea", "Turku"]  # fmt: skip
THINGS = ["museum", "bridge", "library", "market", "harbour", "theatre", "tower", "garden"]


def document(things: list[str] = THINGS[:4]) -> str:
    """Sixty-four distinct factual sentences in paragraphs (a long context)."""
    sentences = [
        f"The {thing} of {place} was opened in {1700 + 7 * i + j} after {3 + i % 5} years "
        f"of work, and it still draws {10 + i * j} thousand visitors a year."
        for i, place in enumerate(PLACES)
        for j, thing in enumerate(things)
    ]
    paragraphs = [" ".join(sentences[k : k + 4]) for k in range(0, len(sentences), 4)]
    return "\n\n".join(paragraphs)


def compressor(**changes: object) -> Compressor:
    return Compressor(CompressionConfig(**changes), "gpt-4o-mini", get_embedder().embed)


def test_segments_protect_code_keep_and_json() -> None:
    text = (f"Intro  text.\n{CODE}\nMore <keep>exact   words</keep> here.\n"
            "    indented  code\n{\n  \"a\": 1.50,\n  \"b\": [1, 2]\n}\nEnd.")  # fmt: skip
    kinds = [(s.kind, s.text) for s in split_segments(text)]
    assert ("code", CODE) in kinds
    assert ("keep", "exact   words") in kinds
    assert ("code", "    indented  code\n") in kinds
    assert ("json", '{\n  "a": 1.50,\n  "b": [1, 2]\n}') in kinds
    assert "".join(t for _, t in kinds) == text.replace("<keep>", "").replace("</keep>", "")


def test_unclosed_fence_protects_to_the_end() -> None:
    segments = split_segments("Prose first.\n```\ncode  that   never closes")
    assert segments[-1].kind == "code" and segments[-1].text.endswith("never closes")


def test_lossless_normalises_prose_only_and_drops_repeats() -> None:
    repeated = (
        "This paragraph is long enough to count as a block of its own, and it is pasted twice."
    )
    text = f"A  line   with spaces.   \n\n\n\n{repeated}\n\n{CODE}\n\n{repeated}\n\nLast."
    out = "".join(s.text for s in lossless(split_segments(text), set()))
    assert out.startswith("A line with spaces.\n\n" + repeated)
    assert CODE in out, "code is byte for byte"
    assert out.count(repeated) == 1 and out.endswith("Last.")
    tsv = "name\tcity\t\tyear\nAda\tLondon\t\t1815"
    assert "".join(s.text for s in lossless(split_segments(tsv), set())) == tsv


def test_json_minified_with_literals_kept() -> None:
    raw = '{\n  "price": 1.50,\n  "note": "two  spaces, a \\" quote",\n  "big": 1e5\n}'
    small = minify_json(raw)
    assert small == '{"price":1.50,"note":"two  spaces, a \\" quote","big":1e5}'
    assert json.loads(small) == json.loads(raw)


def test_units_rejoin_to_the_text() -> None:
    text = document() + "\nShort.\nAnother line without a stop\n\n" + "word " * 200
    units = split_units(text)
    assert "".join(u.body + u.sep for u in units) == text
    assert max(u.words for u in units) <= 90


def test_extractive_keeps_the_answer_in_order_within_budget() -> None:
    c = compressor()
    text = document(THINGS[4:])
    out = c.compress_text(text, "When was the harbour of Kaunas opened?", ratio=3.0)
    assert c.count(out) <= c.count(text) / 3 + 1
    assert "The harbour of Kaunas was opened in" in out
    kept = [s for s in text.replace("\n\n", " ").split(". ") if s and s in out]
    assert [out.index(s) for s in kept] == sorted(out.index(s) for s in kept), "original order"


def test_extractive_never_drops_protected_text() -> None:
    c = compressor()
    text = f"{document()}\n\n{CODE}\n\nNote: <keep>the secret code is 4417</keep>.\n\n{document()}"
    out = c.compress_text(text, "Which museum opened first?", ratio=4.0)
    assert CODE in out and "the secret code is 4417" in out and "<keep>" not in out
    assert c.count(out) < c.count(text) / 2


def test_prompt_cache_rule() -> None:
    cheap_cache = ModelPrice.from_per_million("m", input=1.0, output=2.0, cached_input=0.1)
    half_cache = ModelPrice.from_per_million("m", input=1.0, output=2.0, cached_input=0.5)
    no_cache = ModelPrice.from_per_million("m", input=1.0, output=2.0)
    assert not extractive_beats_cache(cheap_cache, 3.0)  # 1/3 > 0.1: the cache is cheaper
    assert extractive_beats_cache(cheap_cache, 12.0)
    assert extractive_beats_cache(half_cache, 3.0)  # 1/3 < 0.5
    assert extractive_beats_cache(no_cache, 1.5)


def test_prefix_tracker_counts_repeated_leading_messages() -> None:
    tracker = PrefixTracker(ttl_s=60, max_entries=100)
    a = [{"role": "system", "content": "S"}, {"role": "user", "content": "doc"}]
    assert tracker.repeated("m", a) == 0
    assert tracker.repeated("m", a) == 2
    assert tracker.repeated("m", [a[0], {"role": "user", "content": "other"}]) == 1
    assert tracker.repeated("other-model", a) == 0


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"enabled": True, "ratio": 3}, "ratio"),
        ({"extractive": {"ratio": 0.5}}, "extractive.ratio"),
        ({"abstractive": {"enabled": True}}, "model"),
        ({"abstractive": {"enabled": True, "model": "nope"}}, "compression.abstractive.model"),
        ({"roles": ["narrator"]}, "roles"),
    ],
)
def test_config_errors_name_the_key(section: dict[str, object], needle: str) -> None:
    config = {
        "providers": {"up": {"base_url": "http://127.0.0.1:1/v1"}},
        "models": {"gpt-4o": {"provider": "up"}},
        "compression": section,
    }
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        parse_config(config)


def test_json_members_are_selected_when_asked_and_stay_valid_json() -> None:
    records = {f"key-{i:03d}-{place.lower()}": f"value {i}" for i, place in enumerate(PLACES * 3)}
    text = "Look up the key below.\n\n" + json.dumps(records, indent=1)
    whole = compressor()
    assert json.dumps(records, separators=(",", ":")) in whole.compress_text(text, "key-020")
    members = compressor(extractive={"json_members": True})
    out = members.compress_text(text, 'Key: "key-020-bergen"', ratio=4.0)
    kept = json.loads(out[out.index("{") :])
    assert kept["key-020-bergen"] == "value 20" and len(kept) < len(records) / 2
