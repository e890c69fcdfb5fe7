"""lib's import arrows point one way: no module imports, at its top or inside a function, one
that imports it back."""

import ast
from pathlib import Path

LIB = Path(__file__).parents[1] / "lib"


def lib_imports(source: str, modules: set[str]) -> set[str]:
    """The lib modules that `source` (a module of lib) imports anywhere, relative or absolute."""
    deps = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == "lib" or (node.module or "").startswith("lib."):
                name = (node.module or "").removeprefix("lib").lstrip(".")
                deps |= {name.split(".")[0]} if name else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("lib.")}
    return deps & modules


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of `graph` meets, each as the modules along it."""
    found, state = [], {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                found.append(path[path.index(dep):] + [node, dep] if dep in path else [node, dep])
            elif dep not in state:
                walk(dep, [*path, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node, [])
    return found


def test_the_cycle_walk_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    assert lib_imports("from .x import y\nfrom lib.z import w\nimport lib.v\nfrom . import u\n"
                       "def f():\n    from .t import s\n", {"x", "z", "v", "u", "t", "q"}) == {"x", "z", "v", "u", "t"}


def test_lib_has_no_import_cycle():
    modules = {p.stem for p in LIB.glob("*.py") if p.stem != "__init__"}
    graph = {m: lib_imports((LIB / f"{m}.py").read_text(), modules) - {m} for m in modules}
    assert sum(map(len, graph.values())) > len(modules)  # the walk reads the imports there are
    assert cycles(graph) == []
