"""`python -m fer_utils`: the command line, after checking the Python it runs on and that the environment is there."""

import sys

from fer_utils import python_problem

if python_problem(sys.version_info):
    print(f"error: {python_problem(sys.version_info)}", file=sys.stderr)
    raise SystemExit(2)
try:
    from fer_utils.cli import build_parser, run_handler

    args = build_parser().parse_args()  # imports every command's module: numpy, pandas, ...
except ModuleNotFoundError as exc:  # a supported Python without the environment
    print(
        f"error: {exc} (Python {sys.version_info[0]}.{sys.version_info[1]}, {sys.executable}): install the "
        "environment first, `make install` or `pip install -r requirements.txt`, and run its Python",
        file=sys.stderr,
    )
    raise SystemExit(2) from None

raise SystemExit(run_handler(args))
