"""The plain-usage fast path of ``cost`` gives exactly the full computation's figures.

Every priced model of the bundled catalogue (its tiers and per-request fees included),
at usages that cross each tier boundary: the breakdowns must be equal, field by field."""

from __future__ import annotations

from thrifty.pricing import CostBreakdown, PriceCatalogue, cost
from thrifty.pricing.cost import _full_cost, _plain
from thrifty.usage import Usage


def test_plain_usage_costs_the_same_as_the_full_computation() -> None:
    catalogue = PriceCatalogue.bundled()
    compared = 0
    for name in catalogue.names():
        price = catalogue.lookup(name)
        assert price is not None
        inputs = {0, 1, 7, 1_234, 100_000, *(t.above + d for t in price.tiers for d in (0, 1))}
        for input_tokens in sorted(inputs):
            for output_tokens in (0, 1, 333, 8_191):
                usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
                assert _plain(usage)
                fast = cost(usage, price)
                full = _full_cost(usage, price.at(input_tokens), False)
                assert isinstance(fast, CostBreakdown)
                assert fast == full, (name, usage)
                compared += 1
    assert compared > 1_000  # the catalogue really was walked


def test_other_usages_take_the_full_computation() -> None:
    plain = Usage(input_tokens=1_000, output_tokens=200)
    for other in (
        Usage(input_tokens=1_000, output_tokens=200, cached_input_tokens=300),
        Usage(input_tokens=1_000, output_tokens=200, reasoning_tokens=50),
        Usage(input_tokens=1_000, output_tokens=200, audio_output_tokens=10),
        Usage(input_tokens=1_000, output_tokens=200, cache_write_tokens=100),
    ):
        assert _plain(plain) and not _plain(other)
