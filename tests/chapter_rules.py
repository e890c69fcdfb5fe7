"""The chapters' shape (fastbook's `04_mnist_basics` is the model), as a list of what breaks it.

    python tests/chapter_rules.py    # each notebook's departures from the rules, one per line

The rules: the median code cell is at most 8 non-blank lines; a code cell never follows a code
cell without a sentence between; a cell that records a claim does nothing else (every statement
is a `ch.claim` call, its result kept or read by an `if`), and no claim's estimate is computed in
its own call. `tests/test_notebooks.py` asserts that no chapter departs from them.
"""

from __future__ import annotations

import ast
import json
import statistics
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MEDIAN_LINES = 8


def _is_claim(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "claim"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "ch")


def _is_print(node: ast.AST) -> bool:
    call = node.value if isinstance(node, ast.Expr) else None
    return isinstance(call, ast.Call) and getattr(call.func, "id", "") == "print"


def _records_only(statement: ast.stmt) -> bool:
    """A claim call (its result kept or not), or a loop or branch of claims and prints (e.g. the
    evaluation size an undecided claim needs)."""
    if isinstance(statement, (ast.Expr, ast.Assign)):
        return _is_claim(statement.value) or _is_print(statement)
    if isinstance(statement, (ast.If, ast.For)):
        return all(_records_only(s) for s in statement.body + statement.orelse)
    return False


def departures(path: Path) -> list[str]:
    """Where notebook `path` departs from the rules, one line each."""
    cells = json.loads(Path(path).read_text())["cells"]
    code = [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    out = []
    median = statistics.median(len([line for line in src.splitlines() if line.strip()]) for _, src in code)
    if median > MEDIAN_LINES:
        out.append(f"the median code cell has {median:g} lines (at most {MEDIAN_LINES})")
    out += [f"code cell {i + 1} right after code cell {i}" for i in range(len(cells) - 1)
            if cells[i]["cell_type"] == cells[i + 1]["cell_type"] == "code"]
    for i, src in code:
        tree = ast.parse(src)
        claims = [n for n in ast.walk(tree) if _is_claim(n)]
        if not claims:
            continue
        out += [f"cell {i}: a claim's estimate is computed in its own call" for c in claims
                if any(k.arg == "estimate" and isinstance(k.value, ast.Call) for k in c.keywords)]
        out += [f"cell {i}: computes beside a claim: {ast.unparse(s).splitlines()[0][:60]}"
                for s in tree.body if not _records_only(s)]
    return out


if __name__ == "__main__":
    total = 0
    for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        found = departures(nb)
        total += len(found)
        print(f"{nb.name}: {len(found)}", *(f"  {d}" for d in found), sep="\n")
    sys.exit(1 if total else 0)
