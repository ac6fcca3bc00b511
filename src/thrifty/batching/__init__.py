"""Batching: fewer calls for the same questions.

* :mod:`thrifty.batching.packing` — the numbered packed format: build, parse, plan, apportion.
* :mod:`thrifty.batching.packer` — answer a group of requests with packed calls, re-asking
  any item whose answer is missing or malformed (library ``batch()`` and the window).
* :mod:`thrifty.batching.window` — the gateway stage that groups concurrent requests.
* :mod:`thrifty.batching.jobs` — provider batch jobs; :mod:`thrifty.batching.handlers` — their
  handlers, which the server mounts at ``/v1/files`` and ``/v1/batches``.

Nothing is imported here: ``config/schema.py`` imports :mod:`thrifty.batching.config`.
"""

__all__: list[str] = []
