"""The command line run in the test's own process, its output captured: what many test files call."""

from __future__ import annotations

import contextlib
import io

from fer_utils.cli import main


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`python -m fer_utils argv` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()
