"""The two errors of the book's glue still outside `fer_utils.errors`' family (they subclass its base, FerError): a
builder whose code cannot be fingerprinted, an exercise answer from a student's kernel that cannot be read back.
The library never raises them."""

from __future__ import annotations

from fer_utils.errors import FerError


class FingerprintError(FerError, ValueError):
    """A model builder (or fit function) whose code fingerprint cannot be made: it reads a value with no stable
    text to hash (an arbitrary object) or is built in, without Python source (`fer_utils.book.fingerprint`)."""


class ExchangeError(FerError, ValueError):
    """Data from a student's kernel that is not an answer the exercises' exchange can read back
    (`fer_utils.book.exercises.exchange`; a ValueError too, as before it joined the family)."""
