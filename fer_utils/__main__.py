"""`python -m fer_utils`: the command line (see fer_utils.cli)."""

from fer_utils.cli import main

raise SystemExit(main())
