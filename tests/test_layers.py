"""The package's layers point down (issue 15): no import circle between its packages, counting
the imports inside functions too; no private name imported from another package; the
backends never import the spec layer; and every spec reaches its family through the one
registry."""

from __future__ import annotations

import ast
import collections
import pathlib

import pytest

import pinnkit
from pinnkit.families import (
    FAMILIES,
    BatteryFamily,
    GliomaFamily,
    OperatorFamily,
    PDEFamily,
    family_of,
)

ROOT = pathlib.Path(pinnkit.__file__).parent


def _module(path: pathlib.Path) -> str:
    parts = ["pinnkit", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports():
    """(importing module, imported module, names) for every import of a pinnkit module."""
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    found = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                target, names = None, []
                for alias in node.names:
                    if alias.name.startswith("pinnkit"):
                        found.append((name, alias.name, []))
                continue
            else:
                continue
            if target and target.startswith("pinnkit"):
                found.append((name, target, names))
    return modules, found


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in _PACKAGES) else None


_PACKAGES = {p.name for p in ROOT.iterdir() if p.is_dir() and any(p.glob("*.py"))}


def _package_graph():
    graph = collections.defaultdict(set)
    for src, dst, names in _imports()[1]:
        a = _package(src)
        for target in [dst, *(f"{dst}.{n}" for n in names)]:
            b = _package(target)
            if a and b and a != b and b in _PACKAGES:
                graph[a].add(b)
    return graph


def test_no_import_circle_between_packages():
    graph = _package_graph()
    assert {"core", "backends"} <= graph["train"]  # the graph was read

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    circles = sorted((a, b) for a in list(graph) for b in graph[a] if reaches(b, a))
    assert not circles, f"packages that import each other (directly or round): {circles}"


@pytest.mark.parametrize("lower", ["core", "backends", "train", "equations", "reference"])
def test_lower_layers_never_import_the_spec_layer_or_the_families(lower):
    graph = _package_graph()
    assert not graph[lower] & {"spec", "families"}, graph[lower]


def test_no_private_name_is_imported_from_another_package():
    bad = []
    for src, dst, names in _imports()[1]:
        if _package(src) == _package(dst):
            continue
        for n in names:
            if n.startswith("_") and not n.startswith("__"):
                bad.append(f"{src} imports {dst}.{n}")
        if any(part.startswith("_") and not part.startswith("__") for part in dst.split(".")[1:]):
            if _package(dst) is not None and dst.split(".")[1] in _PACKAGES:
                bad.append(f"{src} imports the private module {dst}")
    assert not bad, bad


def test_the_registry_picks_each_family_from_the_spec():
    assert list(FAMILIES) == ["glioma", "battery", "operator", "pde"]  # the fallback last
    assert family_of({"patient": {"wm": "wm.nii.gz"}}) is GliomaFamily
    assert family_of({"equation": "spm"}) is BatteryFamily
    assert family_of({"equation": {"name": "spm", "kinetics": "linear"}}) is BatteryFamily
    assert family_of({"model": {"backend": "sfno"}, "data": {"file": "a.npz"}}) is OperatorFamily
    assert family_of({"equation": "burgers", "coords": ["x", "t"]}) is PDEFamily
    assert family_of({}) is PDEFamily
