"""The package's one error family: a few classes, by what the caller can do about the problem, each a subclass
of the built-in it behaves like.

Each message names what is wrong and what to do; the CLI prints a FerError as one line. A caller that must tell
kinds apart reads `status` (a MediaError's, a DownloadError's), never the message. See CONTRACTS.md, "Errors"."""

from __future__ import annotations

# What a MediaError's `status` may be: the manifest status preprocessing records the file as.
MEDIA_STATUSES = ("unreadable", "empty", "not_video", "bad_image", "missing")
# What a DownloadError's `status` may be: `failed` (any failure), `refused` (the server answered with
# something other than the file: another source may serve it), `stopped` (on request; the `.part` is kept),
# `unreadable` (an archive that cannot be read: truncated, or a member failing its CRC check).
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
    """Data, a file's content, arguments or settings that cannot be used; checked before anything is built, the
    message says what to change."""


class MediaError(InputError):
    """A media file (a clip or an image) that cannot be used; `status` is the manifest status it is recorded as
    (MEDIA_STATUSES): `unreadable` (a container or frames that cannot be decoded), `empty` (no bytes or no
    frames), `not_video` (neither a video nor an image), `bad_image` (an image that decodes, or would, but
    cannot be used as it is), `missing` (listed in an index, no longer on disk)."""

    status = "unreadable"
    statuses = MEDIA_STATUSES


class MissingFileError(FerError, FileNotFoundError):
    """A file or folder the call needs that is not there (e.g. a folder that is not a finished training run)."""


class OutputError(FerError, FileExistsError):
    """An output path that cannot be written safely (`fer_utils.storage.outputs`), or an output folder another
    live process holds the lock of (the message names its pid and host)."""


class DownloadError(FerError, OSError):
    """A download that failed, was refused, stopped, or is corrupt or unsafe to extract; `status` says which
    (DOWNLOAD_STATUSES)."""

    status = "failed"
    statuses = DOWNLOAD_STATUSES


class SetupError(FerError, RuntimeError):
    """The installed libraries or tools cannot do what is needed (OpenCV without its Haar cascade or a video
    codec; the grader without bubblewrap, or a bubblewrap that cannot make a sandbox here)."""


class BookError(FerError, RuntimeError):
    """The book's build tooling cannot do what it was asked: build, execute, check links, write the tables
    between markers (architecture, scorecard, teaching), package or release the book."""
