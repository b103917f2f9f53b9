"""`python -m fer_book`: the book-building command line (see fer_book.cli)."""

from fer_book.cli import main

raise SystemExit(main())
