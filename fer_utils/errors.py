"""The exceptions fer_utils raises for bad input, so callers (and the CLI) can tell them apart."""


class FerError(Exception):
    """Base class: a clear, specific problem with the user's input or data."""


class DatasetError(FerError, ValueError):
    """A dataset root, layout or file name that cannot be used."""


class DownloadError(FerError):
    """A download that failed, was corrupted, or would write outside its target."""


class ModelFileError(FerError, ValueError):
    """A file that is not a loadable (safe) Keras model."""


class MediaError(FerError):
    """A media file (a clip or an image) that cannot be used; `status` is the manifest status it is recorded
    as. Catch this one where a file may be either: a video's problems are VideoErrors, an image's that
    decodes but cannot be used a BadImageError."""

    status = "unreadable"


class VideoError(MediaError):
    """A clip (or an image read as a one-frame clip) that cannot be read: a container or frames that cannot
    be decoded, no frames, not a media file, or missing."""

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


class BadImageError(MediaError):
    """An image that decodes, or would, but cannot be used as it is (e.g. too many pixels to decode)."""

    status = "bad_image"


class MissingMediaError(VideoError):
    """A clip listed in an index whose file no longer exists."""

    status = "missing"


class PreprocessError(FerError, ValueError):
    """Preprocessing arguments or an output folder that cannot be used (e.g. made with other settings)."""


class DetectorError(PreprocessError):
    """An unknown face detector or a search size it cannot use (checked once, in `faces.detectors.detector_kind` and
    `faces.detectors.resolve_max_side`; a preprocessing setting, so also a PreprocessError)."""


class OutputError(FerError, ValueError):
    """An output path that cannot be written safely: an input, inside a folder the command reads, another
    output, a folder, read-only, or a write that failed (checked in `fer_utils.storage.outputs`)."""


class FolderLockedError(FerError):
    """An output folder that another live process holds the lock of (the message names its pid and host)."""


class TrainingError(FerError, ValueError):
    """Training arguments, frames or a run folder that cannot be used (checked before anything is built)."""


class PresetError(TrainingError, KeyError):
    """A training preset name that `TrainConfig.preset` does not know (the message names those it knows; a
    KeyError too, as the unknown key of the presets' table)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # the message as written, not KeyError's quoted repr


class PredictionError(FerError, ValueError):
    """A prediction request that cannot be served as asked (e.g. an output path that is the input itself)."""


class RunFolderError(FerError, FileNotFoundError):
    """A folder that is not a finished training run (a run file it needs is missing)."""


class ImageError(FerError, ValueError):
    """An image array that cannot be used (a dtype or shape that is not a gray, BGR or BGRA image), or a
    crop that cannot be encoded."""


class CropError(FerError, ValueError):
    """A face crop that cannot be made as asked (a box outside the image, alignment without landmarks)."""


class SamplingError(FerError, ValueError):
    """A frame-sampling request that is not a positive number of frames or a positive step."""


class ModelBuildError(FerError, ValueError):
    """A model name or architecture setting (dropout rates, initialiser) that no builder knows."""


class EvaluationError(FerError, ValueError):
    """Predictions that do not fit the frames or classes they are scored against, or an unknown vote or level."""


class ExplainError(FerError, ValueError):
    """A class activation map that cannot be computed (unknown method, no convolution layer)."""


class DeployError(FerError, ValueError):
    """A deployment request that cannot be served (unknown TFLite mode, int8 without calibration images,
    a sparsity outside [0, 1))."""


class SetupError(FerError, RuntimeError):
    """The installed libraries cannot do what is needed (OpenCV without its Haar cascade or a video codec)."""
