"""Model prices and call costs.

Nothing is read at import; the price file loads on the first lookup::

    from thrifty.pricing import PriceCatalogue, cost
    price = PriceCatalogue.default().lookup("deepseek-chat", provider_hint="deepseek")
    breakdown = cost(usage, price) if price else None   # unknown is None, never 0
"""

from __future__ import annotations

from thrifty.pricing.catalogue import ModelPrice, PriceCatalogue, default_user_prices_path
from thrifty.pricing.cost import CostBreakdown, cost, cost_or_none

__all__ = [
    "CostBreakdown",
    "ModelPrice",
    "PriceCatalogue",
    "cost",
    "cost_or_none",
    "default_user_prices_path",
]
