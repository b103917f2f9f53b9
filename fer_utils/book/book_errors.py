"""The one error of the book's glue still outside `fer_utils.errors`' family (it subclasses its base, FerError):
an exercise answer from a student's kernel that cannot be read back. The library never raises it."""

from __future__ import annotations

from fer_utils.errors import FerError


class ExchangeError(FerError, ValueError):
    """Data from a student's kernel that is not an answer the exercises' exchange can read back
    (`fer_utils.book.exercises.exchange`; a ValueError too, as before it joined the family)."""
