"""The errors of the book's glue, in the package's one family (`fer_utils.errors.FerError`): a chapter's
parameters that do not fit its data, a live demo request outside its contract, a builder whose code cannot be
fingerprinted. The library never raises them."""

from __future__ import annotations

from fer_utils.errors import FerError


class ParameterError(FerError):
    """A chapter's parameters do not fit its data; the message says what to change (fer_utils.book.chapters)."""


class DemoError(FerError, ValueError):
    """A live demo page request outside its contract: an unknown model slot, or a model description (DemoAbout)
    with an unknown key or a value of the wrong kind (checked in `fer_utils.book.demo`)."""


class FingerprintError(FerError, ValueError):
    """A model builder (or fit function) whose code fingerprint cannot be made: it reads a value with no stable
    text to hash (an arbitrary object) or is built in, without Python source (`fer_utils.book.fingerprint`)."""
