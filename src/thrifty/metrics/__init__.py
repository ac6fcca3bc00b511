"""Prometheus metrics of the gateway, fed from finished ledger records.

``config.py`` is the ``metrics`` section; ``recorder.py`` turns ledger records into
counters and histograms; ``endpoint.py`` the handler the server mounts at ``GET /metrics``.
"""
