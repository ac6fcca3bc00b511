"""Every command's ``--help`` works and says what the command is for.

Walks the parser itself, so a new subcommand (or a nested one, ``keys create``) is
covered without being listed here.
"""

from __future__ import annotations

import argparse

import pytest

from thrifty.cli.main import build_parser, main


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(build_parser())


def test_every_subcommand_is_found() -> None:
    names = {c[0] for c in COMMANDS if c}
    assert {"serve", "replay", "tune", "keys", "batch", "demo", "prices"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "thrifty")
def test_help_exits_cleanly_and_describes_the_options(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: thrifty")
    assert "-h, --help" in out
    assert len(out.splitlines()) >= 3
