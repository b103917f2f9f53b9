"""The kernel side of `fer_book grade`: the checkers that grade an exercise are the package's own.

The grader starts every submission's kernel with a `Guard` made before any of the student's cells run,
so it holds the checkers as imported fresh. After each exercise cell the grader calls the chapter's
checker through `Guard.call`, which first and last compares every binding the checkers depend on (the
names of each `fer_utils.book.exercises` module, the code, defaults and closures of its functions, the members
of its classes, the functions of the modules they import, the builtins) with the fresh ones. A checker
rebound by any route (`ex.check_x = …`, `sys.modules[…]` + `setattr`, `vars(exercises)[…]`, `exec(…)`,
a replaced `__code__`) is reported as a change, whatever the cell's text looks like; how the student's
own cell calls (or prints after) the checker does not matter. The verdict is printed as one line
`FER-GRADE <nonce> <json>` that the grader reads back.
"""

from __future__ import annotations

import builtins
import json
import sys
import types
from collections.abc import Callable, Iterator

PACKAGE = "fer_utils.book.exercises"
VERDICT_MARK = "FER-GRADE"
# Modules whose attributes change in normal use (streams, warning filters, handlers): not compared.
SYSTEM_STATE = frozenset({"sys", "os", "io", "warnings", "logging", "builtins", "contextlib"})
# Plain values compared by their text (a mutated table of a checker is a change too).
PLAIN_TYPES = (str, int, float, bool, tuple, list, dict, set, frozenset, type(None))


def _function_parts(function: types.FunctionType, where: str) -> Iterator[tuple[str, Callable[[], object], object]]:
    """(what, read it again, its object now) for the parts of a function that decide what it does."""
    yield f"{where}.__code__", lambda: function.__code__, function.__code__
    yield f"{where}.__defaults__", lambda: function.__defaults__, function.__defaults__
    yield f"{where}.__kwdefaults__", lambda: function.__kwdefaults__, function.__kwdefaults__
    for i, cell in enumerate(function.__closure__ or ()):
        contents = cell.cell_contents
        yield f"{where} (closure {i})", lambda cell=cell: cell.cell_contents, contents
        if isinstance(contents, types.FunctionType) and contents.__module__.startswith(PACKAGE):
            yield from _function_parts(contents, f"{where} (closure {i})")


def _module_parts(module: types.ModuleType) -> Iterator[tuple[str, Callable[[], object], object]]:
    """The bindings of one module of the package, and the parts of its functions and classes."""
    name = module.__name__
    yield f"sys.modules[{name!r}]", lambda: sys.modules.get(name), module
    namespace = vars(module)
    for key, value in list(namespace.items()):
        where = f"{name}.{key}"
        yield where, lambda key=key: namespace.get(key), value
        if type(value) in PLAIN_TYPES and not key.startswith("__"):
            yield f"{where} (value)", lambda key=key: repr(namespace.get(key)), repr(value)
        if isinstance(value, types.FunctionType):
            yield from _function_parts(value, where)
        elif isinstance(value, type) and value.__module__.startswith(PACKAGE):
            members = vars(value)
            for member, item in list(members.items()):
                yield f"{where}.{member}", lambda members=members, member=member: members.get(member), item
                if isinstance(item, types.FunctionType):
                    yield from _function_parts(item, f"{where}.{member}")


def _library_parts(module: types.ModuleType) -> Iterator[tuple[str, Callable[[], object], object]]:
    """The top-level functions and classes of a module the checkers use (numpy, pandas, math, …)."""
    namespace = vars(module)
    for key, value in list(namespace.items()):
        if callable(value) and not isinstance(value, types.ModuleType):
            yield f"{module.__name__}.{key}", lambda namespace=namespace, key=key: namespace.get(key), value


def snapshot() -> list[tuple[str, Callable[[], object], object]]:
    """Every binding the checkers depend on, as (what, how to read it again, the object it is now)."""
    import fer_utils.book.exercises  # noqa: F401  (the package and its chapter modules)

    ours = [module for name, module in sorted(sys.modules.items()) if name == PACKAGE or name.startswith(PACKAGE + ".")]
    parts = [part for module in ours for part in _module_parts(module)]
    used = {
        value.__name__: value
        for module in ours
        for value in vars(module).values()
        if isinstance(value, types.ModuleType) and not value.__name__.startswith(PACKAGE)
    }
    for name, module in sorted(used.items()):
        if name.split(".")[0] not in SYSTEM_STATE:
            parts.extend(_library_parts(module))
    namespace = vars(builtins)
    parts.extend(
        (f"builtins.{key}", lambda key=key: namespace.get(key), value)
        for key, value in list(namespace.items())
        if isinstance(value, (types.BuiltinFunctionType, type)) and not key.startswith("_")
    )
    return parts


class Guard:
    """The checkers as imported before any student code ran, and what they depend on."""

    def __init__(self, nonce: str) -> None:
        from fer_utils.book import exercises

        self.nonce = nonce
        self.checkers = {name: getattr(exercises, name) for name in exercises.__all__}
        self.feedback = exercises.Feedback
        self.parts = snapshot()
        self.write = sys.stdout.write
        self.dumps = json.dumps

    def changes(self, limit: int = 3) -> list[str]:
        """What no longer is what it was when the guard was made (at most `limit`, by name)."""
        found = []
        for what, read, then in self.parts:
            try:
                now = read()
            except Exception:  # a part that cannot be read any more has changed
                now = None
            if now is not then and not (isinstance(then, str) and now == then):
                found.append(what)
                if len(found) >= limit:
                    break
        return found

    def emit(self, number: int, status: str, message: str) -> None:
        """Print the verdict of exercise `number` as the one line the grader reads."""
        line = self.dumps({"exercise": number, "status": status, "message": message}, ensure_ascii=True)
        self.write(f"{VERDICT_MARK} {self.nonce} {line}\n")

    def call(self, number: int, checker: str, *args: object, **kwargs: object) -> None:
        """Run the package's own `checker` on the student's inputs and print its verdict: `tampered` when
        anything the checkers depend on was changed before or during the call."""
        changed = self.changes()
        if not changed:
            try:
                feedback = self.checkers[checker](*args, **kwargs)
            except Exception as exc:  # the checker failed on the student's inputs (e.g. a missing column)
                self.emit(number, "error", f"{type(exc).__name__}: {exc}")
                return
            changed = self.changes()
        if changed:
            self.emit(number, "tampered", "the checkers were changed: " + ", ".join(f"`{c}`" for c in changed))
        elif type(feedback) is not self.feedback:
            self.emit(number, "error", f"the checker returned a {type(feedback).__name__}, not its verdict")
        else:
            status = "passed" if feedback.ok else "unanswered" if feedback.unanswered else "failed"
            self.emit(number, status, feedback.message)
