"""The package layers: a module may import its own layer and the layers below it, never one above.

Every ``import`` statement is read with ``ast`` (module level and inside functions alike: a lazy import is
still a dependency), so the test needs no imports of the project and fails on the first upward edge.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module belongs to the longest prefix that names it.
LAYERS: list[tuple[str, ...]] = [
    ("adamotion.utils",),
    ("adamotion.motion",),
    ("adamotion.io", "renderers"),  # readers/writers of motion files; the torch-free renderers
    ("adamotion.data",),  # datasets and their import (reads files through io)
    ("adamotion.text", "adamotion.models", "adamotion.diffusion"),
    ("adamotion.pipeline",),  # inference: text encoder + denoiser + scheduler
    ("adamotion.train", "adamotion.eval", "adamotion.retrieval"),
    ("adamotion.study", "adamotion.bundle", "adamotion.generate_commands", "adamotion.bench",
     "adamotion.retrieval_commands", "adamotion.gpu_recipe"),  # the GPU recipe trains and benchmarks
    ("adamotion.cli", "adamotion.__main__", "adamotion"),  # "adamotion": the package facade (load, ...)
    ("app", "scripts"),
]
# Renderers draw joints with numpy: of the project they may use only the numpy-level geometry and plumbing.
RENDERER_ALLOWED = ("adamotion.utils", "adamotion.motion", "renderers")


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int | None:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if _matches(module, prefix) and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    return None if best is None else best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = REPO_ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every project import in a file; ``from x import y`` names ``x.y`` when that is a
    module, else ``x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            modules = {f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")}
            if len(modules) < len(node.names):
                modules.add(base)
            found += [(node.lineno, name) for name in sorted(modules)]
    return [(line, name) for line, name in found if layer_of(name) is not None]


def project_files() -> list[Path]:
    files = []
    for top in ("adamotion", "renderers", "app", "scripts"):
        files += sorted((REPO_ROOT / top).rglob("*.py"))
    return files


def upward_imports(files: list[Path]) -> list[str]:
    problems = []
    for path in files:
        own = module_name(path)
        own_layer = layer_of(own)
        assert own_layer is not None, f"{path}: not in any layer; add its package to LAYERS"
        for line, name in imported_modules(path):
            where = f"{path.relative_to(REPO_ROOT)}:{line}"
            if _matches(own, "renderers") and not any(_matches(name, p) for p in RENDERER_ALLOWED):
                problems.append(f"{where}: the renderers import {name} (allowed: {', '.join(RENDERER_ALLOWED)})")
            elif layer_of(name) > own_layer and not _matches(name, own):
                problems.append(f"{where}: {own} (layer {own_layer}) imports {name} (layer {layer_of(name)})")
    return problems


def test_no_module_imports_a_higher_layer():
    problems = upward_imports(project_files())
    assert not problems, "lower layers import higher ones:\n" + "\n".join(problems)


def package_of(module: str) -> str:
    """``adamotion.eval.metrics`` -> ``adamotion.eval``; ``renderers.video`` -> ``renderers``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "adamotion" and len(parts) > 1 else parts[0]


def package_cycles(files: list[Path]) -> list[list[str]]:
    """Cycles in the graph of imports between packages (a same-layer pair like eval <-> retrieval counts)."""
    edges: dict[str, set[str]] = {}
    for path in files:
        own = package_of(module_name(path))
        for _, name in imported_modules(path):
            other = package_of(name)
            if other != own and other != "adamotion":
                edges.setdefault(own, set()).add(other)
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_package_cycles():
    cycles = package_cycles(project_files())
    assert not cycles, "package import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def dynamic_imports(files: list[Path]) -> list[str]:
    """Module names written as strings (``importlib.import_module("app.bench")``, lists of such names)."""
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and layer_of(node.value) is not None \
                    and "." in node.value and " " not in node.value and _is_module(node.value):
                own = module_name(path)
                if layer_of(node.value) > layer_of(own) and not _matches(node.value, own):
                    found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {own} names {node.value!r}")
    return found


def test_no_module_names_a_higher_layer_as_a_string():
    """A registry must let higher layers register themselves, not import them by name."""
    found = dynamic_imports([p for p in project_files() if p.parts[-2] != "scripts"])
    assert not found, "\n".join(found)


def test_the_package_facade_imports_lazily():
    """``import adamotion.motion`` runs ``adamotion/__init__.py`` (the top-layer facade): at import time it may
    read only the version from utils, so that low layers stay cheap (and torch-free)."""
    tree = ast.parse((REPO_ROOT / "adamotion" / "__init__.py").read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    project = [ast.unparse(node) for node in top_level
               if any(layer_of(n) is not None for n in [getattr(node, "module", None) or ""] +
                      [a.name for a in node.names])]
    assert project == ["from adamotion.utils.version import __version__"], project


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """Known answer: a data module that imports the pipeline, and a renderer that imports torch-level code."""
    fake_root = tmp_path / "repo"
    (fake_root / "adamotion" / "data").mkdir(parents=True)
    (fake_root / "renderers").mkdir()
    (fake_root / "adamotion" / "data" / "bad.py").write_text(
        "import numpy\n\ndef f():\n    from adamotion.pipeline import MotionPipeline\n")
    (fake_root / "renderers" / "bad.py").write_text("from adamotion.models import denoiser\n")
    (fake_root / "adamotion" / "data" / "good.py").write_text("from ..motion import skeleton\nfrom . import bad\n")
    monkeypatch.setattr(__import__(__name__), "REPO_ROOT", fake_root)
    problems = upward_imports(sorted(fake_root.rglob("*.py")))
    assert len(problems) == 2, problems
    assert "adamotion/data/bad.py:4: adamotion.data.bad (layer 3) imports adamotion.pipeline" in problems[0]
    assert "renderers/bad.py:1: the renderers import adamotion.models" in problems[1]
    (fake_root / "adamotion" / "pipeline.py").write_text("MODULES = ['app.bench']\n")
    (fake_root / "adamotion" / "io").mkdir()
    (fake_root / "adamotion" / "io" / "a.py").write_text("from adamotion.io import b\n")
    (fake_root / "adamotion" / "io" / "b.py").write_text("import adamotion.data.good\n")
    (fake_root / "app").mkdir()
    (fake_root / "app" / "bench.py").write_text("")
    (fake_root / "adamotion" / "data" / "good.py").write_text("from adamotion.io.a import x\n")
    assert package_cycles(sorted(fake_root.rglob("*.py"))) == [["adamotion.data", "adamotion.io", "adamotion.data"]]
    assert dynamic_imports([fake_root / "adamotion" / "pipeline.py"]) == [
        "adamotion/pipeline.py:1: adamotion.pipeline names 'app.bench'"]


@pytest.mark.parametrize("module, layer", [("adamotion.utils.files", 0), ("adamotion.motion", 1), ("renderers.video", 2),
                                           ("adamotion.pipeline", 5), ("adamotion", 8), ("adamotion.cli", 8),
                                           ("app.service", 9),
                                           ("numpy", None)])
def test_layer_of(module, layer):
    assert layer_of(module) == layer
