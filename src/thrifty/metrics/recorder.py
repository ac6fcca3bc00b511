"""Turn finished ledger records into Prometheus counters and histograms.

:meth:`MetricsRecorder.observe` is a ledger-writer observer: it runs on the writer's
thread after each batch is stored, so a request pays nothing for its metrics on its own
path (measured in ``bench/metrics_overhead.py``). The numbers therefore trail the
requests by at most ``ledger.flush_interval_ms``, and they are the ledger's own numbers.

Labels are bounded: a model outside the configured ones (a passthrough model a caller
made up) is counted under its own name only until ``MAX_EXTRA_MODELS`` such names were
seen, then as ``other``; keys, teams and tags are never labels (see the dashboard).

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` is set by ``thrifty serve``
and every worker writes its values there; ``/metrics`` on any worker sums them all.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from thrifty.ledger.record import RequestRecord

log = logging.getLogger(__name__)

MAX_EXTRA_MODELS = 100
#: Latency buckets in seconds: a cache hit (ms) up to a long reasoning answer (minutes).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
_TOKEN_KINDS = ("input", "cached_input", "cache_write", "output", "reasoning")


class MetricsRecorder:
    """The gateway's metrics, in their own registry (one per gateway in a process)."""

    def __init__(self, known_models: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._known = set(known_models)
        self._extra: set[str] = set()
        self._children: dict[tuple[Any, ...], Any] = {}
        r = self.registry
        self.requests = Counter(
            "thrifty_requests", "Requests by endpoint, model, outcome and HTTP status.",
            ["endpoint", "model", "status", "code"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "thrifty_request_duration_seconds", "Time from request to last byte, per model.",
            ["endpoint", "model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "thrifty_time_to_first_token_seconds", "Streams: time to the first chunk.",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "thrifty_tokens", "Tokens of returned answers, by price class.",
            ["model", "kind"], registry=r,
        )  # fmt: skip
        self.cost = Counter(
            "thrifty_cost_usd", "Actual cost in USD (all attempts, overhead included).",
            ["model"], registry=r,
        )  # fmt: skip
        self.baseline = Counter(
            "thrifty_baseline_cost_usd", "What the requests would have cost sent as-is "
            "(docs/ledger.md; a request without a known baseline at its cost).",
            ["model"], registry=r,
        )  # fmt: skip
        self.savings = Counter(
            "thrifty_savings_usd", "Savings booked per cause (net of its overhead).",
            ["technique"], registry=r,
        )  # fmt: skip
        self.losses = Counter(
            "thrifty_savings_negative_usd",
            "Savings below zero per cause (net = savings minus this).",
            ["technique"], registry=r,
        )  # fmt: skip
        self.unpriced = Counter(
            "thrifty_unpriced_requests", "Requests with tokens of no known price.",
            ["model"], registry=r,
        )  # fmt: skip
        self.cache = Counter(
            "thrifty_cache_requests", "Requests the cache saw: hit, miss or bypass.",
            ["result"], registry=r,
        )  # fmt: skip
        self.cache_hits = Counter(
            "thrifty_cache_hits", "Cache hits by cache type (exact, semantic).",
            ["type"], registry=r,
        )  # fmt: skip
        self.cascade = Counter(
            "thrifty_cascade_requests", "Cascaded requests: accepted at entry tier, or escalated.",
            ["result"], registry=r,
        )  # fmt: skip
        self.attempts = Counter(
            "thrifty_upstream_attempts", "Calls to upstream models, by purpose and outcome.",
            ["provider", "model", "purpose", "status"], registry=r,
        )  # fmt: skip
        self.upstream_errors = Counter(
            "thrifty_upstream_errors", "Failed upstream calls by HTTP status (none: no reply).",
            ["provider", "model", "code"], registry=r,
        )  # fmt: skip
        # fed by the Redis breakers (stores/redis.py), not by the ledger
        self.redis_fallbacks = Counter(
            "thrifty_redis_fallbacks",
            "Operations that fell back because Redis was unavailable, by component; "
            "reason: failed (tried and failed) or skipped (breaker open, not tried).",
            ["component", "reason"], registry=r,
        )  # fmt: skip
        self.redis_unavailable = Gauge(
            "thrifty_redis_unavailable",
            "1 while a component's last Redis command failed (until one succeeds), else 0.",
            ["component"], registry=r, multiprocess_mode="livemax",
        )  # fmt: skip
        self._redis_down: dict[str, set[int]] = {}
        self._redis_lock = threading.Lock()

    def expect_redis(self, components: Iterable[str]) -> None:
        """Show these components' Redis series at zero before any outage, so a rate or an
        alert on them has a series to work on from the start."""
        for component in components:
            for reason in ("failed", "skipped"):
                self._child(self.redis_fallbacks, component, reason)
            self._child(self.redis_unavailable, component).set(0)

    def on_redis_event(self, component: str, event: str, breaker: int) -> None:
        """A Redis breaker's event (see :class:`~thrifty.stores.redis.BreakerEvents`):
        count fallbacks; a component is unavailable while any of its breakers is down."""
        if event in ("failed", "skipped"):
            self._child(self.redis_fallbacks, component, event).inc()
            return
        with self._redis_lock:
            down = self._redis_down.setdefault(component, set())
            if event == "down":
                down.add(breaker)
            else:
                down.discard(breaker)
            self._child(self.redis_unavailable, component).set(1 if down else 0)

    def model_label(self, name: str | None) -> str:
        """``name`` itself while the label set stays bounded, else ``other``."""
        if name is None:
            return "none"
        if name in self._known or name in self._extra:
            return name
        if len(self._extra) < MAX_EXTRA_MODELS:
            self._extra.add(name)
            return name
        return "other"

    def observe(self, records: Sequence[RequestRecord]) -> None:
        """Count a written batch (the ledger writer calls this on its thread).

        Each record on its own: one malformed record is logged and skipped, and the rest
        of the batch is still counted (they are already in the ledger)."""
        for record in records:
            try:
                self._observe(record)
            except Exception:
                log.exception(
                    "metrics: record not counted", extra={"request_id": record.request_id}
                )

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, memoised: ``labels()`` validates and locks each call
        (~5 µs), a dict lookup does not; label sets are bounded, so is this dict."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _observe(self, r: RequestRecord) -> None:
        child = self._child
        model = self.model_label(r.model or r.requested_model)
        child(self.requests, r.endpoint, model, r.status, str(r.http_status)).inc()
        child(self.latency, r.endpoint, model).observe(r.latency_ms / 1000)
        if r.ttft_ms is not None:
            child(self.ttft, model).observe(r.ttft_ms / 1000)
        usage = r.usage
        for kind in _TOKEN_KINDS:
            value = getattr(usage, f"{kind}_tokens")
            if value:
                child(self.tokens, model, kind).inc(value)
        if r.cost:
            child(self.cost, model).inc(r.cost)
        # a row without a known baseline counts at its cost, as in every report (no saving)
        baseline = r.cost if r.baseline_cost is None else r.baseline_cost
        if baseline > 0:
            child(self.baseline, model).inc(baseline)
        if r.unpriced:
            child(self.unpriced, model).inc()
        for technique, saved in r.savings.items():
            # a Counter only goes up: a negative saving goes to its own counter
            if saved >= 0:
                child(self.savings, technique).inc(saved)
            else:
                child(self.losses, technique).inc(-saved)
        self._decisions(r)
        for a in r.attempts:
            attempt_model = self.model_label(a.model)
            child(self.attempts, a.provider, attempt_model, a.purpose, a.status).inc()
            if a.status != "ok":
                code = str(a.http_status) if a.http_status is not None else "none"
                child(self.upstream_errors, a.provider, attempt_model, code).inc()

    def _decisions(self, r: RequestRecord) -> None:
        cache = r.techniques.get("cache")
        if cache and cache.get("result"):
            self._child(self.cache, cache["result"]).inc()
            if cache["result"] == "hit":
                self._child(self.cache_hits, cache.get("type", "exact")).inc()
        cascade = r.techniques.get("cascade")
        if cascade:
            escalated = cascade.get("accepted") != cascade.get("start")
            self._child(self.cascade, "escalated" if escalated else "accepted").inc()


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared directory of a multi-worker gateway's metrics, when there is one."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess() -> str:
    """Before forking workers: give them a fresh shared directory for their values.

    An operator's own ``PROMETHEUS_MULTIPROC_DIR`` is kept but emptied of the last run's
    files (stale counters would be added to the new ones); otherwise a temporary
    directory is made and removed at exit.
    """
    path = multiprocess_dir()
    if path is None:
        path = tempfile.mkdtemp(prefix="thrifty-metrics-")
        atexit.register(shutil.rmtree, path, True)
        os.environ[MULTIPROC_ENV] = path
    else:
        os.makedirs(path, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink()
    return path
