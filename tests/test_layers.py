"""The layering rule of docs/architecture.md, enforced on every module of the package (module-level
and function-level imports alike): no family imports a higher layer, ``channels`` imports no other
family, the knowledge base imports no codec or channel, and nothing in the library imports ``cli``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "semguard"

# the layer of each top-level piece of the package (docs/architecture.md)
LAYERS: dict[str, int] = {
    "registry": 0, "utils": 0, "metrics": 0, "__init__": 0,
    "channels": 1, "data": 1,
    "codecs": 2, "baselines": 2, "keys": 2, "knowledge": 2,
    "link": 3,
    "attacks": 4, "defenses": 4, "training": 4,
    "federated": 5, "network": 5,
    "evaluation": 6, "runtime": 6,
    "cli": 7,
}
# same-layer or lower imports that are still forbidden
FORBIDDEN: dict[str, set[str]] = {
    "channels": set(LAYERS) - {"registry", "utils", "channels"},
    "knowledge": {"codecs", "channels", "baselines", "keys", "data"},
}


def _piece(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "semguard":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, imported semguard piece) for every import statement in ``path`` under ``root``."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(root.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            elif node.module:
                names = [node.module]
        for n in names:
            piece = _piece(n)
            if piece is not None:
                found.append((node.lineno, piece))
    return found


def violations(root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        own = rel.parts[0].removesuffix(".py")
        if own not in LAYERS:
            bad.append(f"{rel}: {own!r} has no layer in docs/architecture.md")
            continue
        for line, piece in imports_of(path, root):
            if piece == own:
                continue
            if piece not in LAYERS:
                bad.append(f"{rel}:{line} imports semguard.{piece}, which has no layer")
            elif LAYERS[piece] > LAYERS[own] and own != "__init__":
                bad.append(f"{rel}:{line} imports semguard.{piece} (layer {LAYERS[piece]}) from layer {LAYERS[own]}")
            elif piece in FORBIDDEN.get(own, set()):
                bad.append(f"{rel}:{line} imports semguard.{piece}: {own}/ may not import it")
    return bad


def test_no_import_climbs_the_layers() -> None:
    assert violations() == []


def test_the_rule_catches_a_wrong_import(tmp_path) -> None:
    pkg = tmp_path / "semguard"
    (pkg / "channels").mkdir(parents=True)
    (pkg / "knowledge").mkdir()
    (pkg / "channels" / "bad.py").write_text("from semguard.codecs.zoo import pretrained\n")
    (pkg / "knowledge" / "bad.py").write_text("def f():\n    from semguard.evaluation.run import grid\n")
    (pkg / "knowledge" / "rel.py").write_text("from ..channels import AWGN\n")
    found = violations(pkg)
    assert any("channels/bad.py:1 imports semguard.codecs (layer 2) from layer 1" in v for v in found)
    assert any("knowledge/bad.py:2 imports semguard.evaluation" in v for v in found)
    assert any("knowledge/rel.py:1 imports semguard.channels: knowledge/ may not import it" in v for v in found)


@pytest.mark.parametrize("piece", sorted(set(LAYERS) - {"__init__"}))
def test_every_layer_is_documented(piece: str) -> None:
    doc = (ROOT.parents[1] / "docs" / "architecture.md").read_text()
    assert f"`{piece}" in doc
