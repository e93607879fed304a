"""The package import graph, read from the source with ``ast``.

The stack, lowest first: the core (``registry``, ``output``, ``streams``) <- ``neuron`` <- ``layers`` <- ``methods``
<- ``models`` / ``losses`` <- ``tools`` (take a model, never a training run) <- ``train`` <- the command line
(``commands``: what reads a run or a checkpoint; ``bench``; ``cli``; ``__main__``).
``data`` stands beside the stack on the core alone. A module may import its own package and the packages below
it, never one above it or beside it; and no two files import each other at module level, directly or around a
cycle. What still breaks these rules is listed in ``KNOWN_UPWARD``: the test fails when a new edge goes up and
when a listed one is gone (then delete it from the list), so the list only shrinks.

Run as a script it prints the graph as text: ``python tests/test_import_graph.py``.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "spikeforge"

#: package -> rank (a module may import ranks <= its own; equal ranks only within one package)
RANK = {"registry": 0, "output": 0, "streams": 0, "data": 1, "neuron": 1, "layers": 2, "methods": 3, "models": 4,
        "losses": 4, "tools": 5, "train": 6, "commands": 7, "bench": 7, "cli": 8, "__main__": 9}

#: upward or sideways imports still in the code: (importing package, imported package)
KNOWN_UPWARD: set[tuple[str, str]] = set()


def package_of(module: str) -> str | None:
    """The package (or top-level module) of ``spikeforge.<name>...``; None for a name of the root package."""
    parts = module.split(".")
    if parts[0] != "spikeforge" or len(parts) < 2:
        return None
    if not ((ROOT / parts[1]).is_dir() or (ROOT / f"{parts[1]}.py").is_file()):
        return None  # e.g. spikeforge.__version__
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(every spikeforge module ``path`` imports, those imported when the module loads: outside any function)."""
    everywhere, top = set(), set()

    def visit(node: ast.AST, in_function: bool) -> None:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        names = [n for n in names if n.startswith("spikeforge.")]
        everywhere.update(names)
        if not in_function:
            top.update(names)
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)
    visit(ast.parse(path.read_text(), filename=str(path)), False)
    return everywhere, top


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(package -> packages it imports, module -> modules it imports at module level), spikeforge/__init__ left out
    (its top-level names are lazy re-exports)."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    packages, modules = defaultdict(set), defaultdict(set)
    for name, path in files.items():
        own = package_of(name)
        if own is None:
            continue
        everywhere, top = imports_of(path)
        for target in everywhere:
            other = package_of(target)
            if other is not None and other != own:
                packages[own].add(other)
        modules[name].update(t for t in top if t in files and t != name)
    return packages, modules


def upward_edges(packages: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in packages.items() for b in targets
            if RANK.get(b, 99) > RANK.get(a, 99) or (RANK.get(b) == RANK.get(a) and a != b)}


def file_cycles(modules: dict[str, set[str]]) -> list[list[str]]:
    """Cycles of module-level imports (a package's ``__init__`` importing its own submodules excluded)."""
    cycles, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(modules.get(m, ())):
            if t.startswith(m + "."):
                continue  # a package importing its own submodules
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2
    for m in sorted(modules):
        if m not in state:
            visit(m)
    return cycles


def test_every_package_has_a_rank():
    packages, _ = graph()
    assert set(packages) | {b for t in packages.values() for b in t} <= set(RANK)


def test_no_new_import_goes_up_the_stack():
    up = upward_edges(graph()[0])
    assert up - KNOWN_UPWARD == set(), "new imports up or across the stack"
    assert KNOWN_UPWARD - up == set(), "gone from the code: delete them from KNOWN_UPWARD"


def test_no_cycle_between_files():
    assert file_cycles(graph()[1]) == []


if __name__ == "__main__":
    packages, modules = graph()
    for p in sorted(packages, key=lambda p: (RANK.get(p, 99), p)):
        up = sorted(b for a, b in upward_edges(packages) if a == p)
        print(f"{p:9s} (rank {RANK.get(p, '?')}) -> {', '.join(sorted(packages[p], key=lambda b: (RANK.get(b, 99), b)))}"
              + (f"   UP: {', '.join(up)}" if up else ""))
    cycles = file_cycles(modules)
    print(f"file cycles: {len(cycles)}")
    for c in cycles:
        print("  " + " -> ".join(c))
    sys.exit(0)
