"""lib's import arrows point one way: no module imports, at its top or inside a function, one
that imports it back, and none imports from a layer above its own (docs/layout.md)."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

LIB = Path(__file__).parents[1] / "lib"

# Bottom layer first. A module's layer is its folder under lib/, or its own name at the top.
LAYERS = [
    {"seeds", "config", "profiles", "cache", "threads", "merge", "measure"},
    {"models"},
    {"world"},
    {"pipeline"},
    {"rm"},
    {"rl"},
    {"plans"},
    {"fanout"},
    {"report"},
    {"runner"},
]


def lib_modules() -> dict[str, Path]:
    """Every module of lib by its dotted name under lib (`rm.pool`), packages' `__init__` left out."""
    return {".".join(p.relative_to(LIB).with_suffix("").parts): p
            for p in LIB.glob("**/*.py") if p.name != "__init__.py"}


def lib_imports(source: str, modules: set[str]) -> set[str]:
    """The lib modules (dotted, under lib) that `source` imports anywhere, at its top or in a function.

    Imports are absolute (`from lib.rm.pool import RewardModels`, `from lib.world import data`,
    `import lib.rm.pool`); a relative import is an error, so that a reader sees where each name lives."""
    deps = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import `from {'.' * node.level}{node.module or ''} import …`"
            module = node.module or ""
            if module != "lib" and not module.startswith("lib."):
                continue  # another package's
            base = module.removeprefix("lib").removeprefix(".")
            for alias in node.names:  # `from lib.world import data` names a module; `from lib.config import X` a name
                full = f"{base}.{alias.name}" if base else alias.name
                deps.add(full if full in modules else base)
        elif isinstance(node, ast.Import):
            deps |= {a.name.removeprefix("lib.") for a in node.names if a.name.startswith("lib.")}
    return deps & modules


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def import_graph() -> dict[str, set[str]]:
    modules = lib_modules()
    return {m: lib_imports(p.read_text(), set(modules)) - {m} for m, p in modules.items()}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (module → the modules it imports), as the modules along it, or None."""
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        return err.args[1]
    return None


def test_the_import_walk_and_the_cycle_check_find_what_is_planted():
    found = cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert found is not None and set(found) == {"a", "b", "c"} and found[0] == found[-1]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    source = ("from lib.x.y import z\nfrom lib.w import v\nfrom lib import config\nimport lib.u.t\n"
              "from torch import nn\ndef f():\n    from lib.s import r\n")
    assert lib_imports(source, {"x.y", "w.v", "config", "u.t", "s", "q"}) == {"x.y", "w.v", "config", "u.t", "s"}


def test_every_module_of_lib_has_a_layer():
    unplaced = [m for m in lib_modules() if not any(m.split(".")[0] in layer for layer in LAYERS)]
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"


def test_lib_has_no_import_cycle():
    graph = import_graph()
    assert sum(map(len, graph.values())) > len(graph)  # the walk reads the imports there are
    assert cycle(graph) is None


def test_no_import_points_up_a_layer():
    up = sorted(f"{m} → {d}" for m, deps in import_graph().items() for d in deps if layer_of(d) > layer_of(m))
    assert not up, "imports from a layer above (docs/layout.md):\n" + "\n".join(up)
