"""The errors of the book's glue, in the package's one family (`fer_utils.errors.FerError`): a chapter's
parameters that do not fit its data, a live demo request outside its contract, an exercise answer from a
student's kernel that cannot be read back. The library never raises them."""

from __future__ import annotations

from fer_utils.errors import FerError


class ParameterError(FerError):
    """A chapter's parameters do not fit its data; the message says what to change (fer_utils.book.chapters)."""


class DemoError(FerError, ValueError):
    """A live demo page request outside its contract: an unknown model slot, or a model description (DemoAbout)
    with an unknown key or a value of the wrong kind (checked in `fer_utils.book.demo`)."""


class ExchangeError(FerError, ValueError):
    """Data from a student's kernel that is not an answer the exercises' exchange can read back
    (`fer_utils.book.exercises.exchange`; a ValueError too, as before it joined the family)."""
