"""Cascades: try a cheap model first, check its answer, escalate when the check rejects it.

``checks`` holds the contract (``Verdict``, ``Check``, ``build_checks``, ``combine``) and the
heuristic and logprob checks; ``formats`` checks JSON / schema / tool-call validity;
``judge`` asks a cheap model to grade the answer with a fixed rubric.
See ``docs/cascade-checks.md``.
"""
