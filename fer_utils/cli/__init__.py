"""The `python -m fer_utils` command line: each group of subcommands lives in a light module of this package that
only declares its arguments; the handlers import TensorFlow, dlib or OpenCV when they run, so `--help` is instant."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from fer_utils import __version__
from fer_utils.errors import FerError

# A write the file system refused mid-run (full disk, file too large, read-only): a message, not a traceback.
WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)

COMMAND_MODULES = (
    "fer_utils.cli.data_commands",
    "fer_utils.cli.preprocess_commands",
    "fer_utils.cli.train_command",
    "fer_utils.cli.evaluate_command",
    "fer_utils.cli.predict_command",
    "fer_utils.cli.model_commands",
)

INTERRUPTED_EXIT = 130  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)
INTERRUPTED = (
    "interrupted (Ctrl-C): what this command had finished is kept, and nothing half-written was put in place "
    "(a run, crops and tables are written whole or not at all); run the command again to finish"
)
TERMINATED = INTERRUPTED.replace("interrupted (Ctrl-C)", "stopped (SIGTERM)")


def exit_code_of(stop: KeyboardInterrupt) -> int:
    """The exit code of a command that `stop` ended: 128 + the signal (`interrupts.Stopped`), else Ctrl-C's 130."""
    return getattr(stop, "exit_code", INTERRUPTED_EXIT)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every registered subcommand. TensorFlow's C++ info and warning lines ("cpu_feature_guard",
    "Local rendezvous is aborting") are kept off the terminal unless TF_CPP_MIN_LOG_LEVEL says otherwise."""
    # TensorFlow reads it once, when it loads: for `python -m fer_utils`, after this (a process that loaded it
    # before calling the command line in-process keeps its own level)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(
        prog="python -m fer_utils",
        description="Lightweight facial emotion recognition: data, preprocessing and models "
        "(the book itself is built by `python -m fer_book`).",
    )
    parser.add_argument("--version", action="version", version=f"fer_utils {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the chosen handler."""
    return run_handler(build_parser().parse_args(argv))


def run_handler(args: argparse.Namespace) -> int:
    """Run `args.handler`: a FerError is one line and exit 2, a stop one line and 128 + the signal (as fer_book)."""
    try:
        return int(args.handler(args) or 0)
    except FerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or a SIGTERM a command turned into `interrupts.Stopped`: 130 or 143
        code = exit_code_of(exc)
        print(f"error: {INTERRUPTED if code == INTERRUPTED_EXIT else TERMINATED}", file=sys.stderr)
        return code
    except OSError as exc:
        if exc.errno not in WRITE_FAILURES:
            raise
        print(f"error: could not write {exc.filename or 'a file'}: {exc.strerror}", file=sys.stderr)
        return 2
