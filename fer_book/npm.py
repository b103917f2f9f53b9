"""Pinned packages from the npm registry, checked against the registry's sha512 and vendored into the book.

The HTML book serves every script, WebAssembly file and model itself: no CDN. Each tarball is fetched once
per cache (`$FER_CACHE/npm/`) and refused unless it matches `npm view NAME@VERSION dist.integrity`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from fer_utils.errors import BookError
from fer_utils.storage.atomic import write_atomic

NPM_REGISTRY = "https://registry.npmjs.org"


class NpmPackage(NamedTuple):
    """One npm package at an exact version, with the registry's sha512 integrity string and licence."""

    name: str
    version: str
    integrity: str
    license: str

    @property
    def tarball_url(self) -> str:
        """The registry's tarball address (`dist.tarball`)."""
        return f"{NPM_REGISTRY}/{self.name}/-/{self.name.split('/')[-1]}-{self.version}.tgz"

    @property
    def cache_name(self) -> str:
        """The tarball's file name as `npm pack` writes it (scope included, so no two packages share one)."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"

    @property
    def spec(self) -> str:
        """`name@version`, as npm writes it."""
        return f"{self.name}@{self.version}"


# The ipywidgets "embed" bundle that renders saved widget state in the HTML book (BSD-3-Clause).
WIDGETS_HTML_MANAGER = NpmPackage(
    "@jupyter-widgets/html-manager",
    "1.0.15",
    "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
    "BSD-3-Clause",
)
# MathJax 3, which typesets the chapters' equations (Apache-2.0): served from the book, not from a CDN.
MATHJAX = NpmPackage(
    "mathjax",
    "3.2.2",
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
    "Apache-2.0",
)
# LiteRT.js: Google's TFLite runtime for the web (WebAssembly + XNNPack); runs the book's .tflite as is.
LITERT_CORE = NpmPackage(
    "@litertjs/core",
    "2.5.3",
    "sha512-PlGmbMOq9WitX7FO0jhbdJw9GthatsyuCQXjTt/wJZo0FLaw48q4tz8IwqgqCIkviYGr9OFDL1kCnN4nzWoyJQ==",
    "Apache-2.0",
)
LITERT_WASM_UTILS = NpmPackage(
    "@litertjs/wasm-utils",
    "2.5.3",
    "sha512-4fJiw6tBQnIs+0jH/OQ16nYOiSl8/+zZnn5h2ul8aTKHi05sVqZW580Tmk78pC2kT39A9OYBVdFawteZ/sI1kQ==",
    "Apache-2.0",
)
# MediaPipe's face detection package: ships the BlazeFace short-range .tflite (Apache-2.0) in npm.
MEDIAPIPE_FACE_DETECTION = NpmPackage(
    "@mediapipe/face_detection",
    "0.4.1657300184",
    "sha512-k5aYtTf7av7GwD3C9T4LJB/okHK/uJwFQSOmJ9OHZMlwg7SdYVMolRgDlA962OU7fIBKsrOA7f7BzD2gpzcAKw==",
    "Apache-2.0",
)


def check_integrity(data: bytes, package: NpmPackage) -> None:
    """Raise BookError unless `data` has the sha512 the registry publishes for `package` (its integrity string)."""
    actual = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != package.integrity:
        raise BookError(f"{package.spec}: tarball has {actual[:23]}…, the registry says {package.integrity[:23]}…")


def npm_tarball(package: NpmPackage, cache: Path) -> bytes:
    """The package's tarball from `<cache>/npm/` or else the npm registry, integrity-checked, then cached."""
    import requests

    cached = cache / "npm" / package.cache_name
    if cached.is_file():
        data = cached.read_bytes()
    else:
        try:
            response = requests.get(package.tarball_url, timeout=120)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise BookError(
                f"cannot fetch {package.spec} from the npm registry ({exc}); put its tarball at {cached}"
            ) from exc
        data = response.content
    check_integrity(data, package)
    if not cached.is_file():
        write_atomic(cached, data)
    return data


def vendor_files(
    package: NpmPackage,
    cache: Path,
    target: Path,
    wanted: Callable[[PurePosixPath], bool],
    place: Callable[[PurePosixPath], PurePosixPath] = lambda inner: PurePosixPath(inner.name),
) -> list[Path]:
    """Extract the package's `wanted` files into `target` at `place(path)`; BookError when none matched."""
    written = []
    with tarfile.open(fileobj=io.BytesIO(npm_tarball(package, cache)), mode="r:gz") as archive:
        for member in archive.getmembers():
            inner = PurePosixPath(member.name)
            if not member.isfile() or inner.parts[:1] != ("package",):
                continue
            inner = PurePosixPath(*inner.parts[1:])
            if wanted(inner):
                path = target / place(inner)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(archive.extractfile(member).read())
                written.append(path)
    if not written:
        raise BookError(f"{package.spec} holds none of the files the book needs")
    return written
