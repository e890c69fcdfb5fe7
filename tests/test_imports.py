"""lib's import arrows point one way: no module imports, at its top or inside a function, one
that imports it back."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

LIB = Path(__file__).parents[1] / "lib"


def lib_imports(source: str, modules: set[str]) -> set[str]:
    """The lib modules that `source` (a module of lib) imports anywhere, relative or absolute."""
    deps = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and (module == "lib" or module.startswith("lib.")):
                module = module.removeprefix("lib").removeprefix(".")
            elif node.level != 1:
                continue  # another package's
            deps |= {module.split(".")[0]} if module else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("lib.")}
    return deps & modules


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (module → the modules it imports), as the modules along it, or None."""
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        return err.args[1]
    return None


def test_the_cycle_check_finds_a_planted_cycle():
    found = cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert found is not None and set(found) == {"a", "b", "c"} and found[0] == found[-1]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert lib_imports("from .x import y\nfrom lib.z import w\nimport lib.v\nfrom . import u\n"
                       "def f():\n    from .t import s\n", {"x", "z", "v", "u", "t", "q"}) == {"x", "z", "v", "u", "t"}


def test_lib_has_no_import_cycle():
    modules = {p.stem for p in LIB.glob("*.py") if p.stem != "__init__"}
    graph = {m: lib_imports((LIB / f"{m}.py").read_text(), modules) - {m} for m in modules}
    assert sum(map(len, graph.values())) > len(modules)  # the walk reads the imports there are
    assert cycle(graph) is None
