"""``thrifty config check FILE``: validate a config the way the gateway will."""

from __future__ import annotations

import argparse
import sys

from thrifty.config import load_config
from thrifty.registry import ModelRegistry


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("config", help="work with config files")
    actions = parser.add_subparsers(dest="config_command", required=True)
    check = actions.add_parser("check", help="validate a config file (keys, references, prices)")
    check.add_argument("file")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    registry = ModelRegistry.from_config(config)
    print(f"{args.file}: OK")
    for name in registry.names:
        model = registry.get(name)
        assert model.price is not None
        targets = ", ".join(f"{d.provider}:{d.upstream_model}" for d in model.deployments)
        print(
            f"  {name:<28} -> {targets}  in ${model.price.input_per_token * 1e6:g}/M"
            f"  out ${model.price.output_per_token * 1e6:g}/M  ({model.price.source})"
        )
    sys.stdout.flush()
    return 0
