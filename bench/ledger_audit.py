"""Audit a Thrifty ledger: recompute every row and attempt from the price catalogue.

    python -m bench.ledger_audit --ledger var/demo/ledger.db [--config var/demo/tuned.yaml]

Independent of Thrifty's own accounting on purpose: it reads the SQLite file with
``sqlite3``, the litellm-format price file with ``json`` and the config with ``yaml``, and
prices tokens with its own arithmetic (no ``thrifty.pricing``, ``thrifty.usage`` or
``thrifty.pipeline`` call). For every request it checks, within 1e-9 relative:

* each attempt's cost = its tokens at its model's prices (batch prices for ``batch_api``
  attempts), $0 without tokens, and no cost where the audit knows no price;
* the row's cost = the sum of its attempts; ``unpriced`` and ``estimated`` = any attempt's;
* the baseline (docs/ledger.md): the served tokens, plus what compression removed, at the
  baseline model's list prices, plus the billed failures of the baseline model itself (a
  row with no answer: those alone);
* the savings: known causes only, adding up to ``baseline - cost``.

Models are resolved as the gateway does it: ``models.<name>.price`` (USD per million) from
``--config`` when given, else the catalogue entry named by ``catalogue_name``, the
upstream model or the name (also under ``<provider>/``, without a ``vendor/`` prefix, and
case-insensitively). The catalogue is ``--prices``, else ``$THRIFTY_PRICES_FILE``, else
``~/.thrifty/prices.json``, else the bundled snapshot. Prints one line per mismatch and a
summary; exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REL = 1e-9
CAUSES = frozenset({
    "routing", "cascade", "exact_cache", "semantic_cache", "compression", "batching",
    "prompt_cache", "fallback", "default_model",
})  # fmt: skip
OWN = frozenset({"main", "retry", "fallback"})
BUNDLED = Path(__file__).resolve().parents[1] / "src/thrifty/pricing/data/model_prices.json.gz"
TOKENS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
          "reasoning_tokens")  # fmt: skip


@dataclass(frozen=True)
class Price:
    """USD per token, as the litellm-format catalogue names them."""

    input: float
    output: float
    cached: float | None = None
    write: float | None = None
    reasoning: float | None = None
    batch_input: float | None = None
    batch_output: float | None = None
    batch_cached: float | None = None

    def of(self, tokens: Mapping[str, int], batch: bool = False) -> float:
        """The tokens' cost; unknown class prices fall back as providers bill them."""
        inp = self.batch_input if batch and self.batch_input is not None else self.input
        out = self.batch_output if batch and self.batch_output is not None else self.output
        cached = inp
        if batch and self.batch_cached is not None:
            cached = self.batch_cached
        elif self.cached is not None:
            cached = self.cached
        write = self.write if self.write is not None else inp
        reasoning_price = self.reasoning if self.reasoning is not None else out
        n_in, n_cached, n_write = (tokens[k] for k in TOKENS[:3])
        n_out = tokens["output_tokens"]
        n_reasoning = min(tokens["reasoning_tokens"], n_out)
        return math.fsum([
            max(0, n_in - n_cached - n_write) * inp, n_cached * cached, n_write * write,
            (n_out - n_reasoning) * out, n_reasoning * reasoning_price,
        ])  # fmt: skip


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def catalogue_price(entry: Any) -> Price | None:
    if not isinstance(entry, Mapping):
        return None
    inp = _number(entry.get("input_cost_per_token"))
    out = _number(entry.get("output_cost_per_token"))
    if inp is None or out is None:
        return None
    return Price(inp, out, _number(entry.get("cache_read_input_token_cost")),
                 _number(entry.get("cache_creation_input_token_cost")),
                 _number(entry.get("output_cost_per_reasoning_token")),
                 _number(entry.get("input_cost_per_token_batches")),
                 _number(entry.get("output_cost_per_token_batches")),
                 _number(entry.get("cache_read_input_token_cost_batches")))  # fmt: skip


def config_price(price: Mapping[str, Any]) -> Price:
    def per_token(key: str) -> float | None:
        value = _number(price.get(key))
        return None if value is None else value / 1e6

    return Price(per_token("input") or 0.0, per_token("output") or 0.0, per_token("cached_input"),
                 per_token("cache_write"), per_token("reasoning"), per_token("batch_input"),
                 per_token("batch_output"), per_token("batch_cached_input"))  # fmt: skip


def load_catalogue(path: str | None) -> dict[str, Any]:
    candidates = [path, os.environ.get("THRIFTY_PRICES_FILE"),
                  str(Path.home() / ".thrifty" / "prices.json")]  # fmt: skip
    chosen = next((Path(p) for p in candidates if p and Path(p).is_file()), BUNDLED)
    raw = chosen.read_bytes()
    data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return data if isinstance(data, dict) else {}


class Prices:
    """Model name → price, resolved once per name."""

    def __init__(self, catalogue: dict[str, Any], config: dict[str, Any]) -> None:
        self._catalogue = catalogue
        self._lower = {k.lower(): k for k in catalogue}
        self._models: dict[str, Any] = config.get("models") or {}
        self._providers: dict[str, Any] = config.get("providers") or {}
        self._cache: dict[tuple[str, str | None], Price | None] = {}

    def _lookup(self, name: str, hint: str | None) -> Price | None:
        keys = [name]
        if hint and not name.startswith(f"{hint}/"):
            keys.append(f"{hint}/{name}")
        if "/" in name:
            keys.append(name.split("/", 1)[1])
        for key in keys + [self._lower.get(k.lower(), "") for k in keys]:
            found = catalogue_price(self._catalogue.get(key))
            if found is not None:
                return found
        return None

    def of(self, name: str, upstream: str | None = None) -> Price | None:
        key = (name, upstream)
        if key not in self._cache:
            self._cache[key] = self._resolve(name, upstream)
        return self._cache[key]

    def _resolve(self, name: str, upstream: str | None) -> Price | None:
        model = self._models.get(name)
        if isinstance(model, Mapping):
            if isinstance(model.get("price"), Mapping):
                return config_price(model["price"])
            provider = model.get("provider")
            deployments = model.get("deployments")
            if not provider and isinstance(deployments, list) and deployments:
                provider = deployments[0].get("provider")
                upstream = deployments[0].get("model") or upstream
            settings = self._providers.get(provider) or {}
            hint = settings.get("price_prefix") or provider
            wanted = model.get("catalogue_name") or model.get("model") or upstream or name
            return self._lookup(str(wanted), hint)
        return self._lookup(name, None) or (self._lookup(upstream, None) if upstream else None)


def tokens_of(row: Mapping[str, Any]) -> dict[str, int] | None:
    if row.get("input_tokens") is None:
        return None
    return {k: int(row.get(k) or 0) for k in TOKENS}


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b), 1e-6)


def read(path: Path) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        attempts: dict[str, list[dict[str, Any]]] = {}
        for a in conn.execute("SELECT * FROM attempts ORDER BY request_id, seq"):
            attempts.setdefault(a["request_id"], []).append(dict(a))
        for r in conn.execute("SELECT * FROM requests ORDER BY ts"):
            yield dict(r), attempts.get(r["request_id"], [])
    finally:
        conn.close()


def audit_attempt(a: Mapping[str, Any], prices: Prices) -> str | None:
    tokens = tokens_of(a)
    stored = a["cost"]
    if tokens is None:
        return None if stored in (0, 0.0) else f"attempt {a['seq']}: cost {stored} without tokens"
    price = prices.of(a["model"], a["upstream_model"])
    if price is None:
        return None if stored is None else f"attempt {a['seq']}: cost {stored}, no price known"
    expected = price.of(tokens, batch=a["purpose"] == "batch_api")
    if stored is None or not close(stored, expected):
        return f"attempt {a['seq']} ({a['model']}, {a['purpose']}): cost {stored} != {expected!r}"
    return None


def list_price(tokens: Mapping[str, int]) -> dict[str, int]:
    """The same tokens with cached reads and cache writes billed as plain input."""
    return {**tokens, "cached_input_tokens": 0, "cache_write_tokens": 0}


def expected_baseline(
    row: Mapping[str, Any], attempts: list[dict[str, Any]], prices: Prices
) -> float | None:
    """docs/ledger.md's baseline, recomputed; None when a price is unknown."""
    served = tokens_of(row) or dict.fromkeys(TOKENS, 0)
    name = row["baseline_model"] or row["requested_model"]
    upstream = next((a["upstream_model"] for a in attempts if a["model"] == name), None)
    if any(a["purpose"] == "batch_api" for a in attempts):  # a provider batch job's line
        price = prices.of(name, upstream)
        return None if price is None else price.of(list_price(served))
    own = [a for a in attempts if a["purpose"] in OWN]
    answered = row.get("model") is not None
    answer = next((a for a in reversed(own) if tokens_of(a) == served), None) if answered else None
    failed = math.fsum(a["cost"] or 0.0 for a in own if a is not answer and a["model"] == name)
    if not answered:
        return failed
    price = prices.of(name, upstream)
    if price is None:
        return None
    compress = _json(row, "techniques").get("compress") or {}
    removed = max(0, int(compress.get("before", 0)) - int(compress.get("after", 0)))
    sent = list_price({**served, "input_tokens": served["input_tokens"] + removed})
    return price.of(sent) + failed


def _json(row: Mapping[str, Any], column: str) -> dict[str, Any]:
    value = row.get(column)
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def audit_row(row: Mapping[str, Any], attempts: list[dict[str, Any]], prices: Prices) -> list[str]:
    """Every mismatch of one request row (empty: it adds up)."""
    out = [m for a in attempts if (m := audit_attempt(a, prices))]
    total = math.fsum(a["cost"] or 0.0 for a in attempts)
    if not close(row["cost"], total):
        out.append(f"cost {row['cost']} != sum of attempts {total!r}")
    unpriced = any(a["cost"] is None and a["input_tokens"] is not None for a in attempts)
    if bool(row["unpriced"]) != unpriced:
        out.append(f"unpriced {bool(row['unpriced'])} but attempts say {unpriced}")
    if "estimated" in row:
        estimated = any(a["tokens_estimated"] for a in attempts) or bool(row["tokens_estimated"])
        if bool(row["estimated"]) != estimated:
            out.append(f"estimated {bool(row['estimated'])} but attempts say {estimated}")
    savings = _json(row, "savings")
    if row["endpoint"] == "shadow":  # evaluation cost: never a baseline nor a saving
        if row["baseline_cost"] is not None or savings:
            out.append("a shadow record with a baseline or savings")
        return out
    if unknown := set(savings) - CAUSES:
        out.append(f"savings booked to unknown causes {sorted(unknown)}")
    baseline = row["baseline_cost"]
    expected = None if unpriced else expected_baseline(row, attempts, prices)
    if baseline is None or expected is None:
        if (baseline is None) != (expected is None):
            out.append(f"baseline {baseline} but the audit computes {expected}")
        return out
    if not close(baseline, expected):
        out.append(f"baseline {baseline} != {expected!r}")
    if not close(math.fsum(savings.values()), baseline - row["cost"]):
        out.append(f"savings {savings} do not add up to baseline - cost {baseline - row['cost']!r}")
    return out


def audit(ledger: Path, prices: Prices) -> tuple[int, list[str]]:
    """(rows audited, one line per mismatch)."""
    rows, lines = 0, []
    for row, attempts in read(ledger):
        rows += 1
        lines += [f"{row['request_id']}: {m}" for m in audit_row(row, attempts, prices)]
    return rows, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_audit", description=__doc__)
    parser.add_argument("--ledger", required=True, help="the ledger's SQLite file")
    parser.add_argument("--config", help="the gateway's config (model prices, upstream names)")
    parser.add_argument("--prices", help="a litellm-format price file (default: as the gateway)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    prices = Prices(load_catalogue(args.prices), config or {})
    rows, mismatches = audit(Path(args.ledger), prices)
    for line in mismatches:
        print(line)
    print(f"audited {rows} requests: {len(mismatches)} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
