"""The exceptions fer_utils raises for bad input, so callers (and the CLI) can tell them apart."""


class FerError(Exception):
    """Base class: a clear, specific problem with the user's input or data."""


class DatasetError(FerError, ValueError):
    """A dataset root, layout or file name that cannot be used."""


class DownloadError(FerError):
    """A download that failed, was corrupted, or would write outside its target."""


class ModelFileError(FerError, ValueError):
    """A file that is not a loadable (safe) Keras model."""
