"""Shadow evaluation: after a sampled request is answered, ask the cheaper models the
same question off the request's path, grade their answers against the served one, and
keep both in the ledger, so ``thrifty tune`` can learn from the gateway's own traffic.

See ``docs/shadow.md``.
"""

from thrifty.shadow.config import ShadowConfig

__all__ = ["ShadowConfig"]
