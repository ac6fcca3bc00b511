"""What a user reads: every code block of the README and docs/ is checked, and run.

Shell blocks: each ``thrifty …`` command line is parsed by the real command-line parser
(flags and subcommands must exist; usage notation ``[--flag X]`` is read as optional and
kept). Python blocks compile. YAML blocks parse.

Then every shell and Python block is RUN, as written, unless an HTML comment right before
it says why it cannot be (``<!-- not-runnable: needs your provider key -->``; the reason
must say something). The runnable blocks of a page run in order in one temporary folder
(a copy of ``examples/``, and ``.venv`` pointing at this Python's environment), so a page
can start servers in one block (``… &``) and use them in the next; whatever a block left
running is stopped when the page is done.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from thrifty.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _blocks(lang: set[str]) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for index, match in enumerate(FENCE.finditer(page.read_text())):
            if match.group(1).lower() in lang:
                found.append((f"{page.name}#{index}", match.group(2)))
    return found


def _commands(block: str) -> list[str]:
    """The ``thrifty`` command lines of a shell block (continuations joined, comments cut)."""
    text = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in text.splitlines():
        line = line.strip().removeprefix("$ ")
        line = re.sub(r"\s+#.*$", "", line)
        for part in _split_unquoted(line):
            part = re.sub(r"^(?:\S+/)?\.venv/bin/", "", part.strip())
            if part.startswith("thrifty "):
                out.append(part)
    return out


def _split_unquoted(line: str) -> list[str]:
    """``line`` cut at ``&&``, ``;`` and ``|`` outside quotes (``'a;b'`` is one word)."""
    parts, current, quote, i = [], "", "", 0
    while i < len(line):
        char = line[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif line.startswith("&&", i) or char in ";|":
            parts.append(current.strip())
            current, i = "", i + (2 if line.startswith("&&", i) else 1)
            continue
        current += char
        i += 1
    return [*parts, current.strip()]


def _expand_optional(command: str) -> str:
    """``[--limit N]`` (usage notation) -> ``--limit N``; ``[a|b]`` -> ``a``.
    A bare ``N`` stands for a number and ``&`` for "in the background"."""
    return re.sub(r"\[([^\[\]]*)\]", lambda m: m.group(1).split("|")[0], command)


SHELL = [
    (f"{where}:{command}", command)
    for where, block in _blocks({"sh", "bash", "shell", "console"})
    for command in _commands(block)
]


def test_the_docs_have_thrifty_commands() -> None:
    assert len(SHELL) >= 15


@pytest.mark.parametrize("command", [c for _, c in SHELL], ids=[w for w, _ in SHELL])
def test_each_documented_command_parses(command: str) -> None:
    argv = shlex.split(_expand_optional(command))[1:]
    argv = [{"N": "1"}.get(a, a) for a in argv if a not in ("…", "...", "&")]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of saying "no such flag"
        pytest.fail(f"`{command}` does not parse (exit {exc.code})")


PYTHON = _blocks({"python", "py"})


@pytest.mark.parametrize("code", [c for _, c in PYTHON], ids=[w for w, _ in PYTHON])
def test_each_python_block_compiles(code: str) -> None:
    compile(code, "<doc block>", "exec")


YAML = _blocks({"yaml", "yml"})


@pytest.mark.parametrize("text", [c for _, c in YAML], ids=[w for w, _ in YAML])
def test_each_yaml_block_parses(text: str) -> None:
    yaml.safe_load(text)


# --- running the blocks ----------------------------------------------------------------

RUNNABLE_LANGS = {"sh", "bash", "shell", "console", "python", "py"}
NOT_RUNNABLE = re.compile(r"<!--\s*not-runnable:(.*?)-->\s*$", re.S)


@dataclass(frozen=True)
class Block:
    where: str
    lang: str
    code: str
    not_runnable: str | None  # the reason given, or None: the block is run


def _page_blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for index, match in enumerate(FENCE.finditer(text)):
        lang = match.group(1).lower()
        if lang not in RUNNABLE_LANGS:
            continue
        marker = NOT_RUNNABLE.search(text[max(0, match.start() - 400) : match.start()])
        reason = marker.group(1).strip() if marker else None
        found.append(Block(f"{page.name}#{index}", lang, match.group(2), reason))
    return found


BLOCKS = {page.name: _page_blocks(page) for page in PAGES}
MARKED = [b for blocks in BLOCKS.values() for b in blocks if b.not_runnable is not None]
RUN_PAGES = [name for name, blocks in BLOCKS.items() if any(not b.not_runnable for b in blocks)]


@pytest.mark.parametrize("block", MARKED, ids=[b.where for b in MARKED])
def test_a_block_that_is_not_run_says_why(block: Block) -> None:
    assert block.not_runnable is not None and len(block.not_runnable) >= 10, (
        f"{block.where}: `<!-- not-runnable: ... -->` needs a reason"
    )


def test_most_blocks_run() -> None:
    runnable = sum(not b.not_runnable for blocks in BLOCKS.values() for b in blocks)
    assert runnable >= 8, f"only {runnable} doc blocks run"


def _environment(folder: Path) -> dict[str, str]:
    """This Python's environment as ``.venv`` of the folder, and this checkout's source."""
    (folder / ".venv").symlink_to(Path(sys.prefix))
    shutil.copytree(ROOT / "examples", folder / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("THRIFTY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def _run(block: Block, folder: Path, env: dict[str, str], started: list[int]) -> None:
    if block.lang in ("python", "py"):
        argv = [sys.executable, "-c", block.code]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    log = folder / f".{block.where}.log"  # a file, not a pipe: a server a block leaves
    with log.open("w") as out:  # running in the background keeps its output open
        process = subprocess.Popen(
            argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    started.append(process.pid)
    try:
        process.wait(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"{block.where} did not finish in 150 s:\n{log.read_text()[-2000:]}")
    assert process.returncode == 0, (
        f"{block.where} failed ({process.returncode}):\n{log.read_text()[-3000:]}"
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", RUN_PAGES)
def test_the_runnable_blocks_of_a_page_run(page: str, tmp_path: Path) -> None:
    env = _environment(tmp_path)
    started: list[int] = []
    try:
        for block in BLOCKS[page]:
            if not block.not_runnable:
                _run(block, tmp_path, env, started)
    finally:
        for group in started:  # servers a block started in the background
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        _wait_gone(started)


def _wait_gone(groups: list[int], seconds: float = 15.0) -> None:
    """Wait until the servers have let go of their ports (the next page binds the same ones:
    a gateway still shutting down would answer its health check, then refuse)."""
    deadline = time.monotonic() + seconds
    for group in groups:
        while True:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
                break
            time.sleep(0.05)
