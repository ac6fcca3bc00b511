"""What a user reads: every code block of the README and docs/ is checked.

Shell blocks: each ``thrifty …`` command line is parsed by the real command-line parser
(flags and subcommands must exist; usage notation ``[--flag X]`` is read as optional and
kept). Python blocks compile. YAML blocks parse. Running every block is not possible here
(they name the user's own files and providers); the commands that run for real are
covered by the tests of each command.
"""

from __future__ import annotations

import re
import shlex
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
        for part in re.split(r"\s*(?:&&|;|\|)\s*", line):
            part = re.sub(r"^(?:\S+/)?\.venv/bin/", "", part.strip())
            if part.startswith("thrifty "):
                out.append(part)
    return out


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
