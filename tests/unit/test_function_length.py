"""No function of daemon/coffre over 60 lines without saying why in its docstring.

A function that long is read in pieces; the rule of the code base is to split it,
or to say in a paragraph of its docstring starting "Long (N lines)" why a split
would read worse. This test keeps both the rule and the figure in the reason true.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "daemon" / "coffre"
LIMIT = 60


def long_functions(source: str) -> list[tuple[str, int, str]]:
    """(name, length in lines, docstring) of each function of ``source`` over LIMIT lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > LIMIT:
                found.append((node.name, length, ast.get_docstring(node) or ""))
    return found


def unexplained(source: str) -> list[str]:
    """The long functions of ``source`` whose docstring gives no reason with their true length."""
    return [
        f"{name} ({length} lines)"
        for name, length, doc in long_functions(source)
        if not re.search(rf"^Long \({length} lines\)", doc, re.M)
    ]


def test_every_long_function_says_why() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): bad
        for path in sorted(PACKAGE.rglob("*.py"))
        if (bad := unexplained(path.read_text()))
    }
    assert offenders == {}, (
        "split these, or give the reason in a docstring paragraph 'Long (N lines) ...'"
    )


def test_a_long_function_without_its_reason_is_caught() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    bare = f'def f():\n    """Does f."""\n{body}\n'
    stale = f'def f():\n    """Does f.\n\n    Long (12 lines) by nature.\n    """\n{body}\n'
    told = stale.replace("Long (12 lines)", f"Long ({LIMIT + 5} lines)")
    assert unexplained(bare) == [f"f ({LIMIT + 2} lines)"]
    assert unexplained(stale) == [f"f ({LIMIT + 5} lines)"]
    assert unexplained(told) == []
