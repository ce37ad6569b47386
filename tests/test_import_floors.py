"""netspec's floors: imports only go down, and no modules import each other in a cycle.

Every import in netspec/ counts, at module level or inside a function (a lazy import is still a
dependency; it only moves its cost). An import under `if TYPE_CHECKING:` must respect the floors
too, but it runs nowhere, so it does not make a cycle: naming a type of a module that imports
yours is what such a block is for. KNOWN lists the exceptions left, each with its reason; the
test fails on any new one, and on a KNOWN entry that no longer exists, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "netspec"

# Longest prefix wins. The front end (0-5) never imports torch: tests/test_no_torch.py.
FLOORS = {
    "netspec": 0,  # the package's __init__: __version__ only
    "netspec.record": 0,
    "netspec.errors": 0,
    "netspec.jsontext": 0,
    "netspec.ir": 1,
    "netspec.ops": 2,
    "netspec.passes": 3,
    "netspec.spec": 4,
    "netspec.data.augment": 4,  # augmentation ops and their static checks: front end
    "netspec.data.peek": 4,  # check's look at data files: front end
    "netspec.tune.space": 4,  # the search: section's schema and checks: front end
    "netspec.compiler": 5,
    "netspec.summary": 5,
    "netspec.memory": 5,
    "netspec.docs": 5,
    "netspec.lower": 6,  # model.py, train.py and the nn.Modules, from a typed graph; no run state
    "netspec.data": 7,
    "netspec.runtime": 7,
    "netspec.export": 7,
    "netspec.tracking": 7,
    "netspec.viz": 7,
    "netspec.tune": 8,
    "netspec.init": 8,  # writes a spec fitted to data it reads (image folders, tables, UCR sets)
    "netspec.cli": 9,
    "netspec.__main__": 10,
}

# (importer, imported): why it is still there. Remove an entry with the import it excuses.
KNOWN = {}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _type_only(tree: ast.AST) -> set[int]:
    """The import nodes inside `if TYPE_CHECKING:` blocks, by id."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.Import | ast.ImportFrom)}
    return out


def _imports(name: str, path: Path, modules: dict[str, Path], typing: bool = True) -> set[str]:
    """The netspec modules `name` imports, anywhere in its source (with `typing` False, not those
    imported for type checkers only)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text())
    skip = set() if typing else _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            while t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != name and t.startswith("netspec"):
                found.add(t)
    return found


def _floor(name: str) -> int:
    best = max((p for p in FLOORS if name == p or name.startswith(p + ".")), key=len)
    return FLOORS[best]


def _edges(typing: bool = True) -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules, typing) for name, path in modules.items()}


def _known(a: str, b: str) -> bool:
    return (a, b) in KNOWN or (a, b.rsplit(".", 1)[0] + ".*") in KNOWN


def test_every_module_has_a_floor():
    for name in _modules():
        assert any(name == p or name.startswith(p + ".") for p in FLOORS), name


def test_imports_only_go_down():
    up = [
        f"{a} ({_floor(a)}) imports {b} ({_floor(b)})"
        for a, targets in _edges().items()
        for b in sorted(targets)
        if _floor(b) > _floor(a) and not _known(a, b)
    ]
    assert not up, "\n".join(up)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    edges = {a: {b for b in targets if not _known(a, b)} for a, targets in _edges(typing=False).items()}
    assert not _cycles(edges), _cycles(edges)


def test_every_known_exception_still_exists():
    edges = _edges()
    for a, b in KNOWN:
        assert a in edges, f"KNOWN names {a}, which is gone: remove the entry"
        assert any(t == b or (b.endswith(".*") and t.startswith(b[:-1])) for t in edges[a]), (
            f"{a} no longer imports {b}: remove the KNOWN entry"
        )


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_only_imports_under_type_checking_are_type_only():
    tree = ast.parse(
        "import a\nif TYPE_CHECKING:\n    from b import c\n    import d\nelse:\n    import e\n"
        "def f():\n    from g import h\n"
    )
    names = {
        (n.module if isinstance(n, ast.ImportFrom) else n.names[0].name)
        for n in ast.walk(tree)
        if id(n) in _type_only(tree)
    }
    assert names == {"b", "d"}
