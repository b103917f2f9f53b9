"""The code's layout, read from its imports: the floors hold, no circle, one atomic writer. (No line cap:
a module is split by subject, never to stay under a count.)

The floors, from the bottom: the library (`fer_utils.*`), the book's glue (`fer_utils.book`), the command
line (`fer_utils.cli`), the book's tooling (`fer_book`). A module imports only from its own floor or
below, imports inside functions included (a function-local import must not hide a circle).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("fer_utils", "fer_book")
FLOORS = {"library": 0, "book": 1, "cli": 2, "tooling": 3}
ATOMIC_MODULE = "fer_utils.storage.atomic"
# A rename or replace of a path: os.replace/os.rename, or `<path>.rename(x)` / `<path>.replace(x)` with one
# argument (str.replace takes two; pandas' rename takes keywords).
RENAME = re.compile(r"\bos\.(replace|rename)\(|\.(rename|replace)\(\s*[\w.\[\]\"']+\s*\)")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))}


def floor(module: str) -> int:
    """The floor a module stands on."""
    if module.startswith("fer_book"):
        return FLOORS["tooling"]
    if module.startswith("fer_utils.cli") or module == "fer_utils.__main__":
        return FLOORS["cli"]
    if module.startswith("fer_utils.book"):
        return FLOORS["book"]
    return FLOORS["library"]


def resolve(name: str) -> str | None:
    """The project module a dotted import name refers to (its longest known prefix), or None."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def imports_of(module: str) -> set[str]:
    """Every project module `module` imports, at any depth of its code (functions included)."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
        found |= {target for target in map(resolve, names) if target and target != module}
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in GRAPH.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_the_graph_is_read_from_the_code() -> None:
    """The reader sees the imports it must (so that the tests below can fail)."""
    assert "fer_utils.errors" in GRAPH["fer_utils.storage.atomic"] | reachable("fer_utils.storage.atomic")
    assert any(target.startswith("fer_utils.book.") for target in GRAPH["fer_book.build"])
    assert "fer_utils.data.corpora" in GRAPH["fer_utils.data.indexing"]
    assert floor("fer_utils.train.fit") < floor("fer_utils.book.chapters") < floor("fer_utils.cli.model_commands")


def test_no_module_imports_one_on_a_higher_floor() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if floor(target) > floor(module) and target != "fer_utils"
    ]
    assert not upward, "imports back up a floor:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    circles = sorted(
        f"{module} -> {target}" for module in GRAPH for target in GRAPH[module] if module in reachable(target)
    )
    assert not circles, "imports on a circle (each reaches back to the first):\n" + "\n".join(circles)


def test_every_rename_goes_through_the_atomic_module() -> None:
    """Temporary-and-rename is written once (`fer_utils.storage.atomic`): one temporary-name scheme, one sweeper."""
    found = [
        f"{MODULES[module].relative_to(REPO)}:{number}: {line.strip()}"
        for module in MODULES
        if module != ATOMIC_MODULE
        for number, line in enumerate(MODULES[module].read_text(encoding="utf-8").splitlines(), 1)
        if RENAME.search(line) and not line.lstrip().startswith("#")
    ]
    assert not found, "renames outside fer_utils/storage/atomic.py:\n" + "\n".join(found)


def test_the_rename_pattern_sees_what_it_must() -> None:
    for line in ("os.replace(tmp, path)", "tmp.rename(target)", "part.replace(dest)", "tmp.replace(self.out)"):
        assert RENAME.search(line), line
    for line in ('name.replace("-", "_")', "frame.rename(columns={'a': 'b'})", "table.rename_axis('x')"):
        assert not RENAME.search(line), line
