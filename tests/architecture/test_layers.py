"""Every import inside ``src/thrifty`` points down the layer list of docs/architecture.md.

A package may import only from packages in strictly lower layers (never a sibling in its
own layer, never upwards), so there is no import cycle between packages. Imports under
``if TYPE_CHECKING:`` and inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "thrifty"
DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

#: Lowest first. Each entry is one layer: the top-level packages/modules in it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "logs", "section", "usage", "messages", "learned"),
    ("tokens", "pricing", "embeddings", "stores"),
    ("recordings",),
    ("registry",),
    ("providers",),
    ("ledger",),
    ("pipeline",),
    ("governance",),
    ("cache", "compression", "routing", "batching", "metrics"),
    ("cascade", "shadow"),
    ("config",),
    ("techniques",),
    ("runtime",),
    ("client", "dashboard", "upstream", "replay"),
    ("server",),
    ("cli",),
)

LAYER_OF = {unit: index for index, layer in enumerate(LAYERS) for unit in layer}


def _unit(module: str) -> str:
    """``thrifty.cache.exact`` -> ``cache``; the root package is ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    """The ``thrifty.*`` modules ``path`` imports (absolute and relative, any depth)."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts if path.name == "__init__.py" else rel.parts[:-1])
    if path.name == "__init__.py":
        package = package[:-1]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module in ("thrifty", "") or module.count(".") == 0:
                found += [f"{module}.{alias.name}" for alias in node.names]
            else:
                found.append(module)
    return [m for m in found if m == "thrifty" or m.startswith("thrifty.")]


def _edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        source = "__init__" if rel.as_posix() == "__init__.py" else rel.parts[0].removesuffix(".py")
        for module in _imports(path):
            target = _unit(module)
            if target != source:
                edges.setdefault((source, target), []).append(str(rel))
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {p.name.removesuffix(".py") for p in SRC.iterdir() if p.suffix == ".py" or (
        p.is_dir() and (p / "__init__.py").exists())} - {"__init__"}
    assert units - set(LAYER_OF) == set(), "add these to LAYERS and docs/architecture.md"
    assert set(LAYER_OF) - units == set(), "LAYERS names units that do not exist"


def test_imports_point_down() -> None:
    wrong = []
    for (source, target), where in sorted(_edges().items()):
        if source == "__init__":
            continue  # the root package re-exports the public API
        if LAYER_OF[target] >= LAYER_OF[source]:
            wrong.append(f"{source} -> {target} ({', '.join(sorted(set(where)))})")
    assert wrong == []



@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer[0])
def test_the_architecture_page_lists_each_layer(layer: tuple[str, ...]) -> None:
    text = DOC.read_text()
    for unit in layer:
        assert re.search(rf"`{unit}`", text), f"docs/architecture.md does not name `{unit}`"
