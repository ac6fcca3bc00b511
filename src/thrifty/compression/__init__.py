"""Prompt compression: fewer input tokens for the context before the final question.

Importing this package loads nothing heavy (the config schema imports its section);
see ``docs/compression.md`` and ``stage.py`` for the order of the passes.
"""

from thrifty.compression.config import CompressionConfig

__all__ = ["CompressionConfig"]
