"""The exceptions fer_utils raises for bad input, so callers (and the CLI) can tell them apart."""


class FerError(Exception):
    """Base class: a clear, specific problem with the user's input or data."""


class DatasetError(FerError, ValueError):
    """A dataset root, layout or file name that cannot be used."""


class DownloadError(FerError):
    """A download that failed, was corrupted, or would write outside its target."""


class ModelFileError(FerError, ValueError):
    """A file that is not a loadable (safe) Keras model."""


class VideoError(FerError):
    """A clip or image that cannot be read; `status` is the manifest status it is recorded as."""

    status = "unreadable"


class UnreadableVideoError(VideoError):
    """A video or image whose container or frames cannot be decoded (corrupted, truncated)."""

    status = "unreadable"


class EmptyVideoError(VideoError):
    """A zero-byte file, or a container that holds no frames."""

    status = "empty"


class NotVideoError(VideoError):
    """A file that is neither a video nor an image (e.g. text with a .mp4 name)."""

    status = "not_video"


class BadImageError(VideoError):
    """An image that decodes, or would, but cannot be used as it is (e.g. too many pixels to decode)."""

    status = "bad_image"


class MissingMediaError(VideoError):
    """A clip listed in an index whose file no longer exists."""

    status = "missing"


class PreprocessError(FerError, ValueError):
    """Preprocessing arguments or an output folder that cannot be used (e.g. made with other settings)."""


class OutputError(FerError, ValueError):
    """An output path that cannot be written safely: an input, inside a folder the command reads, another
    output, a folder, read-only, or a write that failed (checked in `fer_utils.outputs`)."""


class FolderLockedError(FerError):
    """An output folder that another live process holds the lock of (the message names its pid and host)."""


class TrainingError(FerError, ValueError):
    """Training arguments, frames or a run folder that cannot be used (checked before anything is built)."""


class PredictionError(FerError, ValueError):
    """A prediction request that cannot be served as asked (e.g. an output path that is the input itself)."""


class RunFolderError(FerError, FileNotFoundError):
    """A folder that is not a finished training run (a run file it needs is missing)."""
