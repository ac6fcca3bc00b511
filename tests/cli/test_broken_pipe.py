"""``thrifty ... | head``: a reader that stops early is not an error worth a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow
def test_a_closed_pipe_prints_no_traceback() -> None:
    # `true` exits without reading, so every write to the pipe fails with EPIPE
    command = f"{sys.executable} -m thrifty.cli.main prices show gpt-4o | true"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stderr == "", done.stderr
    assert done.returncode == 0  # the pipeline's status is `true`'s
