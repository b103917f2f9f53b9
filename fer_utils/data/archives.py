"""Safe extraction of zip archives: every member is checked before anything is written.

A member that is absolute, holds `..`, is a link or a device, or lands outside the target folder is
refused; so is an archive whose members expand past a limit (a zip bomb); every member's CRC-32 is
checked (`testzip`). RAVDESS's archives (`fer_utils.data.download.download_ravdess`) are extracted here.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from fer_utils.errors import DownloadError

# Extraction limits against zip bombs: members may expand to at most MAX_EXPANSION × the archive's size,
# and never past MAX_EXTRACT_BYTES. RAVDESS zips hold already-compressed mp4 (ratio ≈ 1).
MAX_EXPANSION = 20.0
MAX_EXTRACT_BYTES = 16 << 30


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be extracted (absolute, `..`, drive, link, device), or None if safe."""
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    mode = info.external_attr >> 16
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in path.parts:
        return "path with '..'"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no unix type recorded
        return "not a regular file or folder (hard link, device or fifo)"
    return None


def check_expansion(archive: Path, infos: list[zipfile.ZipInfo], max_expansion: float, max_total_bytes: int) -> None:
    """Raise DownloadError when the members' total uncompressed size passes `max_expansion` × the
    archive's size or `max_total_bytes` (a zip bomb). The declared sizes can be trusted as an upper
    bound: zipfile never decompresses a member past its declared size (it fails the CRC instead)."""
    total = sum(info.file_size for info in infos)
    size = Path(archive).stat().st_size
    limit = min(int(max_expansion * size), int(max_total_bytes))
    if total > limit:
        which = (
            f"the hard cap of {int(max_total_bytes):,} bytes"
            if limit == int(max_total_bytes)
            else f"{max_expansion:g} × the archive's {size:,} bytes"
        )
        raise DownloadError(
            f"refusing to extract {Path(archive).name}: its {len(infos)} member(s) expand to "
            f"{total:,} bytes, past the limit of {limit:,} bytes ({which}); a zip bomb?"
        )


def safe_extract(
    archive: Path, dest: Path, *, max_expansion: float = MAX_EXPANSION, max_total_bytes: int = MAX_EXTRACT_BYTES
) -> list[Path]:
    """Extract a zip into `dest` after checking every member; nothing is written if any is unsafe.

    Refuses absolute paths, `..`, symlinks and other non-regular members (zip external attributes),
    members that resolve outside `dest`, and archives whose members expand past `max_expansion` × the
    archive's size or `max_total_bytes` (`check_expansion`); then checks every member's CRC-32
    (`testzip`). Returns the extracted files.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{archive} is not a readable zip archive: {exc}", status="unreadable") from exc
    with zf:
        root = dest.resolve()
        infos = zf.infolist()
        for info in infos:
            problem = _member_problem(info)
            target = (root / info.filename).resolve()
            if problem is None and root != target and root not in target.parents:
                problem = "lands outside the target folder"
            if problem:
                raise DownloadError(f"refusing to extract {archive.name}: member {info.filename!r} is a {problem}")
        check_expansion(archive, infos, max_expansion, max_total_bytes)
        bad = zf.testzip()
        if bad is not None:
            raise DownloadError(f"{archive.name} is corrupt: member {bad!r} fails its CRC check", status="unreadable")
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        for info in infos:
            written.append(Path(zf.extract(info, root)))
    return [p for p in written if p.is_file()]


def zip_problem(path: Path) -> str | None:
    """Why `path` cannot be opened as a zip archive (its central directory, at the end, is read: a truncated
    download fails here without reading the members), or None."""
    try:
        with zipfile.ZipFile(path):
            return None
    except (zipfile.BadZipFile, OSError) as exc:
        return str(exc) or type(exc).__name__
