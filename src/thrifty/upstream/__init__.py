"""``thrifty upstream``: a fast, deterministic OpenAI-compatible stand-in for providers.

Used by tests, benchmarks and the demo. See ``docs/test-upstream.md``.
"""

from __future__ import annotations

from thrifty.recordings.dataset import messages_key
from thrifty.recordings.synthetic import rule_text
from thrifty.upstream.answers import Dataset
from thrifty.upstream.app import DEFAULT_MODELS, UpstreamOptions, build_upstream_app
from thrifty.upstream.faults import FaultSpec

__all__ = [
    "DEFAULT_MODELS",
    "Dataset",
    "FaultSpec",
    "UpstreamOptions",
    "build_upstream_app",
    "messages_key",
    "rule_text",
]
