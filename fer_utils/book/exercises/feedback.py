"""The feedback machinery every checker shares: the verdict (`Feedback`) and `coding_exercise`, which turns an
unanswered stub or a crash of the student's code into feedback, so a student notebook always runs to the end."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# The message of every checker's verdict on an answer that is still the stub (None, NotImplementedError, `...`).
UNANSWERED = "Not answered yet"


# The output metadata key under which an executed notebook keeps what a checker measured (`fer_book.book_times`).
EXERCISE_KEY = "fer_exercise"


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: `ok` and a message saying why (shown as the cell's output); `seconds`: how long the
    runs it judged trained, from an empty cache (an experiment's), kept in the output's metadata."""

    ok: bool
    message: str
    seconds: float | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:  # the cell's text/plain output: the mark, then the message
        return ("✅ " if self.ok else "❌ ") + self.message

    @property
    def unanswered(self) -> bool:
        """Whether the answer was still the stub (not a wrong answer)."""
        return not self.ok and self.message.startswith(UNANSWERED)

    def _repr_markdown_(self) -> str:
        return ("✅ **Correct.** " if self.ok else "❌ **Not yet.** ") + self.message

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> tuple[dict, dict]:
        data = {"text/markdown": self._repr_markdown_(), "text/plain": repr(self)}
        return data, ({EXERCISE_KEY: {"train_seconds": self.seconds}} if self.seconds is not None else {})


def run_student(function: Callable[..., object], *args: object, **kwargs: object) -> object:
    """Call the student's code; a stub (it raises NotImplementedError, or returns `...`) raises NotImplementedError."""
    result = function(*args, **kwargs)
    if result is Ellipsis:
        raise NotImplementedError(f"{getattr(function, '__name__', 'your code')} returned `...`")
    return result


def coding_exercise(check: Callable[..., Feedback]) -> Callable[..., Feedback]:
    """Make a checker of student code safe: an unanswered stub or a crash becomes feedback, never an exception."""

    @functools.wraps(check)
    def checked(answer: object, *args: object, **kwargs: object) -> Feedback:
        name = getattr(answer, "__name__", "your code")
        if answer is None:
            return Feedback(False, f"{UNANSWERED}: complete the function above and run this cell again.")
        try:
            return check(answer, *args, **kwargs)
        except NotImplementedError:  # the stub, still unanswered
            return Feedback(
                False, f"{UNANSWERED}: complete `{name}` (replace `raise NotImplementedError`) and run this cell again."
            )
        except Exception as exc:  # the student's code failed: name the error, keep the notebook running
            return Feedback(False, f"`{name}` raised {type(exc).__name__}: {exc}")

    return checked


# Exactly Python's and NumPy's ints and floats (no bool, no subclass: a student's class could equal anything).
NUMBER_TYPES = frozenset(
    {int, float} | {np.dtype(code).type for code in np.typecodes["AllInteger"] + np.typecodes["Float"]}
)


def as_number(answer: object) -> float | None:
    """`answer` as a float when its type is exactly one of NUMBER_TYPES, else None."""
    return float(answer) if type(answer) in NUMBER_TYPES else None  # type: ignore[arg-type]


def same_value(got: object, expected: object) -> bool:
    """Whether `got` equals `expected` and has exactly its type (a NumPy scalar counts as its Python value)."""
    if isinstance(got, np.generic) and type(got) in NUMBER_TYPES | {np.str_}:
        got = got.item()
    return type(got) is type(expected) and got == expected


def check_number(answer: object, expected: float, what: str, rel_tol: float = 1e-3, abs_tol: float = 0.0) -> Feedback:
    """Compare a numeric answer with the expected value within a tolerance; explain the difference.
    The answer must be a plain int or float (Python's or NumPy's), not an object that only behaves as one."""
    if answer is None:
        return Feedback(False, f"{UNANSWERED}: replace `None` with {what}.")
    value = as_number(answer)
    if value is None:
        return Feedback(False, f"{what} is a number (an int or a float); got a {type(answer).__name__}: {answer!r}.")
    if not math.isfinite(value):
        return Feedback(False, f"{what} is a finite number; got {value:g}: look for a division by zero or a NaN.")
    if math.isclose(value, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return Feedback(True, f"{what} is {expected:g}.")
    direction = "too high" if value > expected else "too low"
    return Feedback(False, f"{value:g} is {direction} for {what}. Look again at how it is computed.")


def foreign(value: object, trusted: tuple[str, ...]) -> bool:
    """Whether `value` is a function or class the notebook made (in `__main__`, or code from outside `trusted`)."""
    if (isinstance(value, type) or callable(value)) and getattr(value, "__module__", None) == "__main__":
        return True
    code = getattr(value, "__code__", None)
    return code is not None and not code.co_filename.startswith(trusted)


def untampered() -> Feedback:
    """Whether no `fer_utils` function or class in this kernel was replaced by the notebook's own (known patches)."""
    import sys
    import sysconfig
    from pathlib import Path

    packages = {str(Path(__file__).parents[2]), str(Path(__file__).resolve().parents[2])}
    paths = sysconfig.get_paths()
    trusted = tuple({*packages, sys.prefix, sys.base_prefix, paths["stdlib"], paths["purelib"], paths["platlib"]})
    for name, module in list(sys.modules.items()):
        if not name.startswith("fer_utils") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if foreign(value, trusted):
                return Feedback(
                    False, f"tampered: the notebook replaced {name}.{attribute}; grading needs the book's own"
                )
    return Feedback(True, "the book's package is its own")
