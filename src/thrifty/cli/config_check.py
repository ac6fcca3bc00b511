"""``thrifty config check FILE``: validate a config the way the gateway will.

A model with no known price (missing from the catalogue, or listed there at $0) is an
error that names the closest catalogue names; one the config marks ``free`` says so."""

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
        price = model.price
        targets = ", ".join(f"{d.provider}:{d.upstream_model}" for d in model.deployments)
        if price.all_zero:
            shown = "free (the config says so)"
        else:
            shown = (
                f"in ${price.input_per_token * 1e6:g}/M  out ${price.output_per_token * 1e6:g}/M"
            )
            if price.tiers:
                shown += f"  (dearer above {price.tiers[0].above:,} prompt tokens)"
        print(f"  {name:<28} -> {targets}  {shown}  ({price.source}: {price.name})")
    sys.stdout.flush()
    return 0
