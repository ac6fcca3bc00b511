"""The ``metrics`` config section: the Prometheus endpoint."""

from __future__ import annotations

from thrifty.section import Section


class MetricsConfig(Section):
    """``GET /metrics`` in the Prometheus text format.

    Counters are updated by the ledger writer's thread after each batch it writes, not by
    the request path. ``require_admin``: the endpoint exposes model names, spend and error
    counts (never keys); set it when the gateway is reachable by people who should not
    see those, and give Prometheus one of ``auth.admin_keys`` as its bearer token.
    """


    enabled: bool = True
    require_admin: bool = False
