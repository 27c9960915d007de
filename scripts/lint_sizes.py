"""Size limits the linter keeps (issue 12): no file over 400 lines, no class over 300, no function over 60.

ruff has complexity and statement-count rules but no line-count limits for files, classes and
functions, so this walks the AST of ``gateway/`` and ``drivers/``. Exit 1 with FILE:LINE lines.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FILE, MAX_CLASS, MAX_FUNC = 400, 300, 60


def problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    out = []
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if lines > MAX_FILE:
        out.append(f"{path}:1: file has {lines} lines (limit {MAX_FILE}): split it by concern")
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNC
            if size > limit:
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                out.append(f"{path}:{node.lineno}: {kind} {node.name} has {size} lines (limit {limit})")
    return out


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("gateway"), Path("drivers")]
    files = [f for root in roots for f in ([root] if root.is_file() else sorted(root.rglob("*.py")))]
    found = [p for f in files for p in problems(f)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
