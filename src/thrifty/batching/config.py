"""The ``batching`` config section: prompt packing, the gateway window, provider batch jobs.

Its own module so the technique's settings live next to its code; ``config/schema.py``
only names the section. The base class repeats ``Section``'s two rules (unknown keys are
errors, frozen) instead of importing it, because the schema imports this module.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from thrifty.section import Section


class PackingConfig(Section):
    """How independent questions are packed into one call (library and window alike)."""

    max_batch_size: int = Field(default=10, ge=2, le=100)
    """Most questions per packed call; a bigger batch is split."""
    max_question_tokens: int = Field(default=400, ge=1)
    """A longer question is never packed (window: the request goes alone)."""
    answer_tokens: int = Field(default=300, ge=16)
    """Output budget per item when the request sets no ``max_tokens``; the packed call's
    ``max_tokens`` is the sum of its items' budgets, capped by the model's output limit."""


class WindowConfig(Section):
    """The gateway's request window (the ``batch`` stage, after routing)."""

    enabled: bool = False
    """Build the stage. Requests still opt in with ``x-thrifty-batch: window``..."""
    default: bool = False
    """...unless this is true: then every eligible request is windowed
    (``x-thrifty-batch: off`` opts a request out)."""
    window_ms: int = Field(default=200, ge=1, le=5_000)
    """How long the first request of a group waits for company."""
    scope: Literal["key", "global"] = "key"
    """key: only requests of the same caller key share a call; global: any callers."""


class JobsConfig(Section):
    """Provider batch jobs: ``/v1/files`` and ``/v1/batches`` through the gateway."""

    enabled: bool = False
    path: str = "thrifty-batches.db"
    """SQLite file mapping gateway file/batch ids to the provider's (shared with the CLI)."""
    max_file_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)


class BatchingConfig(Section):
    """Fewer calls for the same questions: packing, the window, and batch jobs (50% off).

    ``Thrifty.batch()`` (prompt packing in the library) works whatever ``enabled`` says;
    the window stage and the job routes need ``enabled`` and their own ``enabled``.
    """

    enabled: bool = False
    packing: PackingConfig = Field(default_factory=PackingConfig)
    window: WindowConfig = Field(default_factory=WindowConfig)
    jobs: JobsConfig = Field(default_factory=JobsConfig)

    @model_validator(mode="after")
    def _something_to_do(self) -> BatchingConfig:
        if self.enabled and not (self.window.enabled or self.jobs.enabled):
            raise ValueError(
                "batching is enabled but neither window.enabled nor jobs.enabled is set"
            )
        return self

    @property
    def window_on(self) -> bool:
        return self.enabled and self.window.enabled

    @property
    def jobs_on(self) -> bool:
        return self.enabled and self.jobs.enabled

    @classmethod
    def for_tests(cls, **changes: object) -> BatchingConfig:
        """Window and jobs on, a short window."""
        return cls.model_validate(
            {"enabled": True, "window": {"enabled": True, "window_ms": 150},
             "jobs": {"enabled": True}, **changes}
        )  # fmt: skip
