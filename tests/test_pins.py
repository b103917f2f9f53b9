"""The pins install on every platform and Python the book supports: pip's dry run, against the registry.

pip resolves requirements.txt (and the peer's package, without its dependencies, as `setup` installs it) for
each platform and Python version with `--platform`, `--python-version` and `--only-binary=:all:`: a package
with no wheel there fails the run, which names the platform. pip evaluates environment markers against the
Python that runs it, not the target, so the top-level markers (`tensorflow` on macOS) are evaluated here for the
target first; a marker deeper in the dependency tree is still read for this machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import fer_utils
from fer_book.steps import PEER_REQUIREMENTS, REQUIREMENTS

REPO = Path(__file__).resolve().parents[1]


class Platform(NamedTuple):
    """A platform students bring: pip's `--platform` tags and the markers its Python reports."""

    name: str
    tags: tuple[str, ...]
    markers: dict[str, str]


# glibc 2.28 (Debian 10, Ubuntu 20.04, RHEL 8) and newer: pip expands no perennial manylinux tag, so all are named.
LINUX_TAGS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)), "manylinux2014_x86_64")
PLATFORMS = (
    Platform("Linux x86-64", LINUX_TAGS, {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}),
    Platform("macOS arm64", ("macosx_14_0_arm64",), {"sys_platform": "darwin", "platform_system": "Darwin"}),
    Platform(
        "Windows x86-64", ("win_amd64",), {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"}
    ),
)
MACHINES = {"Linux x86-64": "x86_64", "macOS arm64": "arm64", "Windows x86-64": "AMD64"}
# Pins PyPI has only as source, which compile nothing (data files and Python): checked once, not per platform.
SOURCE_ONLY = {"face-recognition-models"}


def supported_pythons() -> list[str]:
    """Every minor version from the oldest to the newest of fer_utils.SUPPORTED_PYTHONS, as "3.11"."""
    (major, oldest), (_, newest) = fer_utils.SUPPORTED_PYTHONS
    return [f"{major}.{minor}" for minor in range(oldest, newest + 1)]


def target_lines(path: Path, platform: Platform, python: str) -> list[str]:
    """The requirement lines of `path` whose markers hold on `platform` under `python`, markers removed."""
    environment = {
        **platform.markers,
        "platform_machine": MACHINES[platform.name],
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    requirements = [Requirement(line) for line in lines if line]
    return [str(r).split(";")[0] for r in requirements if r.marker is None or r.marker.evaluate(environment)]


def dist_name(line: str) -> str:
    """The normalised distribution name a requirement line asks for."""
    return canonicalize_name(Requirement(line).name)


def dry_run(lines: list[str], platform: Platform, python: str, folder: Path, *pip_options: str) -> dict:
    """pip's report of installing `lines` on `platform` under `python`; AssertionError naming both on failure."""
    requirements = folder / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = folder / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    command += ["--only-binary=:all:", "--python-version", python, *(f"--platform={tag}" for tag in platform.tags)]
    # fast-deps reads a wheel's metadata by HTTP range requests where the index serves no metadata file (PEP 658).
    command += ["--use-feature=fast-deps", "--report", str(report), *pip_options, "-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert result.returncode == 0, f"{platform.name}, Python {python}: " + " / ".join(errors or [result.stderr[-800:]])
    return json.loads(report.read_text(encoding="utf-8"))


def resolve(platform: Platform, python: str, folder: Path) -> dict[str, str]:
    """What `setup` would install on `platform` under `python`: {distribution: version}."""
    for name in ("pins", "peer"):
        (folder / name).mkdir(parents=True)
    lines = [line for line in target_lines(REPO / REQUIREMENTS, platform, python) if dist_name(line) not in SOURCE_ONLY]
    pins = dry_run(lines, platform, python, folder / "pins")
    peer = target_lines(REPO / PEER_REQUIREMENTS, platform, python)
    peer_report = dry_run(peer, platform, python, folder / "peer", "--no-deps")
    installs = [*pins["install"], *peer_report["install"]]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, str] | str]:
    """Every platform × Python resolved, all at once; a failed run's message in its place."""
    root = tmp_path_factory.mktemp("pins")
    targets = [(platform, python) for platform in PLATFORMS for python in supported_pythons()]

    def one(target: tuple[Platform, str]) -> dict[str, str] | str:
        platform, python = target
        try:
            return resolve(platform, python, root / f"{platform.name} {python}")
        except AssertionError as error:
            return str(error)

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:  # pip waits on the network more than it computes
        return dict(zip(((p.name, v) for p, v in targets), pool.map(one, targets)))


def test_every_pin_resolves_to_a_wheel_on_each_platform_and_python(resolved: dict) -> None:
    failures = [outcome for outcome in resolved.values() if isinstance(outcome, str)]
    assert not failures, "\n".join(failures)
    pinned = {dist_name(line) for line in target_lines(REPO / REQUIREMENTS, PLATFORMS[0], "3.11")}
    for (platform, python), installs in resolved.items():
        assert pinned - {"tensorflow-cpu"} - SOURCE_ONLY <= set(installs), (
            f"{platform}, Python {python}: {sorted(installs)}"
        )
        tensorflow = "tensorflow" if platform == "macOS arm64" else "tensorflow-cpu"
        assert installs[tensorflow] == "2.20.0", f"{platform}, Python {python}: no {tensorflow} 2.20.0"


def test_a_pin_with_no_wheel_for_a_platform_fails_naming_it(tmp_path: Path) -> None:
    """tensorflow-cpu has no macOS wheel (the failure this file's markers avoid): the dry run says where."""
    with pytest.raises(AssertionError, match=r"^macOS arm64, Python 3\.12: .*tensorflow-cpu==2\.20\.0"):
        dry_run(["tensorflow-cpu==2.20.0"], PLATFORMS[1], "3.12", tmp_path, "--no-deps")


def test_the_pins_that_are_only_source_build_anywhere_and_need_nothing(tmp_path: Path) -> None:
    """A source-only pin installs wherever pip can build a pure package: it must declare no dependency, which
    could differ by platform (its metadata built by pip from the source)."""
    lines = [line for line in target_lines(REPO / REQUIREMENTS, PLATFORMS[0], "3.11") if dist_name(line) in SOURCE_ONLY]
    assert {dist_name(line) for line in lines} == SOURCE_ONLY, "a source-only package is no longer pinned"
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet"]
    result = subprocess.run([*command, "--report", str(report), *lines], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    assert {canonicalize_name(item["metadata"]["name"]) for item in installs} == SOURCE_ONLY
    assert all(not item["metadata"].get("requires_dist") for item in installs), installs
