"""The package's one error family: a few classes, by what the caller can do about the problem, each a subclass
of the built-in it behaves like.

Each message names what is wrong and what to do (one line in the CLI); a caller tells kinds apart by `status`."""

from __future__ import annotations

MEDIA_STATUSES = ("unreadable", "empty", "not_video", "bad_image", "missing")  # a MediaError's manifest status
# A DownloadError's `status`: `failed` (any failure), `refused` (the server sent something else: another source may
# serve it), `stopped` (on request; the `.part` kept), `unreadable` (an archive truncated or failing its CRC check).
DOWNLOAD_STATUSES = ("failed", "refused", "stopped", "unreadable")


class FerError(Exception):
    """Base class: a clear, specific problem with the user's input, data or environment. `status` (None unless
    a member sets it) says what a caller that records problems rather than stopping writes down."""

    status: str | None = None
    statuses: tuple[str, ...] = ()  # what `status` may be, for a member that records its kind

    def __init__(self, *args: object, status: str | None = None) -> None:
        super().__init__(*args)
        if status is not None:
            if self.statuses and status not in self.statuses:
                raise ValueError(f"a {type(self).__name__}'s status is one of {self.statuses}, not {status!r}")
            self.status = status


class InputError(FerError, ValueError):
    """Data, a file's content, arguments or settings that cannot be used; checked before anything is built."""


class MediaError(InputError):
    """A clip or image that cannot be used; `status`, its manifest status: unreadable (cannot be decoded), empty (no
    bytes or frames), not_video (nor an image), bad_image (decodes but unusable), missing (indexed, not on disk)."""

    status = "unreadable"
    statuses = MEDIA_STATUSES


class MissingFileError(FerError, FileNotFoundError):
    """A file or folder the call needs that is not there (e.g. a folder that is not a finished training run)."""


class OutputError(FerError, FileExistsError):
    """An output path that cannot be written safely, or an output folder another live process holds the lock of."""


class DownloadError(FerError, OSError):
    """A download that failed, was refused, stopped, or is corrupt or unsafe to extract; `status` says which."""

    status = "failed"
    statuses = DOWNLOAD_STATUSES


class SetupError(FerError, RuntimeError):
    """The installed libraries or tools cannot do what is needed (OpenCV's Haar cascade or codecs, bubblewrap)."""


class BookError(FerError, RuntimeError):
    """The book's tooling cannot do what it was asked: build, execute, check links, write tables, package, release."""
