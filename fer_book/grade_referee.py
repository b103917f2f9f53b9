"""Inside a grading sandbox of its own: the checks, run apart from the student's code.

`python -m fer_book.grade_referee REFERENCE EXCHANGE` imports the checkers of the pristine copy
(`fer_utils.book.exercises`), answers `{"ready": true}`, then reads one JSON request a line:
`{"op": "check", "exercise": n, "checker": "check_…", "answer": text}`. It reads the answer back as plain
data (`exchange.read_answer`, never the student's code), loads the checker's other arguments from
REFERENCE (pickled by the grader's own run of the book's chapter: the student's kernel never hands the
reference), and answers `{"verdict": {"status", "message"}}`.

When the answer is a function of the student's, the checker gets a `StudentFunction`: each call pickles
its arguments into EXCHANGE (which the student's sandbox reads), asks the grader `{"call": {"exercise": n,
"arguments": path}}`, and waits for `{"result": text}`, which the grader got from the student's kernel; the
function ran there, never here. So nothing the student's code does can reach the checker, its reference
data or its verdict: what comes back is decoded as data, and a reply that is not is `tampered`.
"""

from __future__ import annotations

import argparse
import json
import keyword
import pickle
import sys
from pathlib import Path

from fer_book.grade_runner import protocol_streams, replier
from fer_utils.book.exercises.exchange import (
    ExchangeError,
    FunctionAnswer,
    ModelPickler,
    ModelUnreadable,
    Raised,
    read_answer,
    read_result,
)


class Tampered(BaseException):
    """What came back from the student's kernel is not what the grader's helper writes (a BaseException,
    so that no checker's `except Exception` takes it for the student's error)."""


class ResultTooLarge(Exception):
    """What a student's function returned was over the size one reply may carry: the checker reports it as
    that function's error (a wrong answer), not as tampering."""


class Interrupted(BaseException):
    """The grader stopped the check (the student's kernel stopped during a call)."""


def raised(record: Raised) -> Exception:
    """The exception a student's function raised, as an exception of the same name here (a stub's
    NotImplementedError stays one, so that the checker reads it as unanswered)."""
    if record.type_name == "NotImplementedError":
        return NotImplementedError(record.message)
    name = record.type_name if record.type_name.isidentifier() and not keyword.iskeyword(record.type_name) else "Error"
    return type(name, (Exception,), {})(record.message)


def keras_models(value: object, found: dict[str, object], prefix: str) -> dict[str, object]:
    """Every Keras model among a checker's reference arguments (in dicts, lists and tuples), by key."""
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(value, keras.Model):
        found.setdefault(f"{prefix}-{len(found)}", value)
    elif isinstance(value, dict):
        for item in value.values():
            keras_models(item, found, prefix)
    elif isinstance(value, (list, tuple)):
        for item in value:
            keras_models(item, found, prefix)
    return found


class StudentFunction:
    """The checker's handle on a function of the student's: calling it runs it in the student's kernel."""

    def __init__(self, name: str, call: object) -> None:
        self.__name__ = name
        self._call = call

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._call(args, kwargs)  # type: ignore[operator]

    def __repr__(self) -> str:
        return f"<your function {self.__name__}>"


class Referee:
    """The checks of one submission, against the reference of its chapter."""

    def __init__(self, reference: Path, exchange: Path, requests: object, reply: object) -> None:
        from fer_utils.book import exercises

        self.exercises = exercises
        self.reference, self.exchange = reference, exchange
        self.requests, self.reply = requests, reply
        self.calls = 0

    def student_call(self, number: int, models: dict[str, object]) -> object:
        """A function that runs a call of exercise `number`'s student function in the student's kernel."""

        def call(args: tuple, kwargs: dict) -> object:
            self.calls += 1
            path = self.exchange / f"call-{number}-{self.calls}.pickle"
            with path.open("wb") as fh:
                ModelPickler(fh, self.exchange, models).dump((args, kwargs))
            path.chmod(0o644)
            for model_file in self.exchange.glob("model-*.pickle"):
                model_file.chmod(0o644)
            self.reply({"call": {"exercise": number, "arguments": str(path)}})
            line = self.requests.readline()  # type: ignore[attr-defined]
            message = json.loads(line) if line else {}
            if "result" not in message:
                raise Interrupted
            if message.get("oversize") is True:  # an honest function may return much: too much is its error
                raise ResultTooLarge(f"what it returned is too large to be checked ({message.get('error')})")
            if message.get("error") or not isinstance(message["result"], str):
                raise Tampered(f"calling your function gave no result ({message.get('error') or 'nothing written'})")
            try:
                result = read_result(message["result"])
            except ModelUnreadable:
                raise  # the student's model: the checker says so, as for any error of the student's code
            except ExchangeError as exc:
                raise Tampered(f"what your function returned came back garbled: {exc}") from exc
            if isinstance(result, Raised):
                raise raised(result)
            return result

        return call

    def check(self, number: int, checker: str, answer_text: str) -> tuple[str, str]:
        """(status, message) of exercise `number`'s answer, judged by the pristine `checker`."""
        if checker not in self.exercises.__all__ or not checker.startswith("check_"):
            return "error", f"the book names no checker {checker!r}"
        path = self.reference / f"exercise-{number}.pickle"
        if not path.is_file():
            return "error", "the grader's own run of the chapter gave no reference for this exercise"
        with path.open("rb") as fh:
            args, kwargs = pickle.load(fh)
        try:
            answer = read_answer(answer_text)
        except ModelUnreadable as exc:
            return "failed", str(exc)
        except ExchangeError as exc:
            return "tampered", f"what your kernel handed over is not an answer: {exc}"
        if isinstance(answer, FunctionAnswer):
            models = keras_models([args, kwargs], {}, str(number))
            answer = StudentFunction(answer.name, self.student_call(number, models))
        try:
            feedback = getattr(self.exercises, checker)(answer, *args, **kwargs)
        except Tampered as exc:
            return "tampered", str(exc)
        except Exception as exc:  # the checker could not judge this answer (e.g. an answer of a strange type)
            return "error", f"the checker could not judge your answer: {type(exc).__name__}: {exc}"
        if type(feedback) is not self.exercises.Feedback:
            return "error", f"the checker returned a {type(feedback).__name__}, not its verdict"
        return ("passed" if feedback.ok else "unanswered" if feedback.unanswered else "failed"), feedback.message

    def serve(self) -> None:
        """Answer check requests until they end (or the grader interrupts a call)."""
        self.reply({"ready": True})
        for line in self.requests:  # type: ignore[attr-defined]
            request = json.loads(line)
            try:
                status, message = self.check(int(request["exercise"]), str(request["checker"]), request["answer"])
            except Interrupted:
                return
            self.reply({"verdict": {"status": status, "message": message}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_book.grade_referee")
    parser.add_argument("reference", type=Path)
    parser.add_argument("exchange", type=Path)
    args = parser.parse_args(argv)
    requests, replies = protocol_streams()
    Referee(args.reference, args.exchange, requests, replier(replies)).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
