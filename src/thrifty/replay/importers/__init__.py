"""Importers: turn other sources (public benchmarks, the ledger) into replay datasets.

Each importer is one module with one function returning ``list[ReplayRecord]``; writing
the file is :func:`thrifty.recordings.dataset.write_dataset`'s job.
"""

from __future__ import annotations
