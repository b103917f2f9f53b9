"""`python -m fer_book`: the book-building command line (see fer_book.commands)."""

from fer_book.commands import main

raise SystemExit(main())
