"""The command line in the test's own process (`run_cli`, its output captured; `train_cli`), and the
`preprocess` command line many test files run (`preprocess_args`)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from fer_utils.cli import main


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`python -m fer_utils argv` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def train_cli(*args: str) -> int:
    """`python -m fer_utils train args` in this process, its output not captured: its exit code."""
    return main(["train", *args])


def preprocess_args(dataset: str, src: Path, out: Path, *extra: str, workers: int = 1) -> list[str]:
    """A quiet `preprocess` command line over `src` into `out`, with `workers` processes."""
    return [
        "preprocess",
        "--dataset",
        dataset,
        "--src",
        str(src),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--quiet",
        *extra,
    ]
