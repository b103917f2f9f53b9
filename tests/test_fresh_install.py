"""`pip install .` into a fresh virtualenv with the newest setuptools (no pin), as on a current Colab.

face-recognition-models' `__init__` imports `pkg_resources`, which setuptools 81 removed; the landmark
and dlib-CNN code paths must still find dlib's weight files. pip reaches PyPI (wheels it has cached
are reused); the test takes a few minutes, so it is marked slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from fer_utils.assets import still_paths

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import cv2, importlib.util, setuptools, sys
from fer_utils.faces.crops import make_detector, make_landmarker
assert importlib.util.find_spec("pkg_resources") is None, "this setuptools still ships pkg_resources"
image = cv2.imread(sys.argv[1])
boxes = make_detector("dlib-cnn").detect(image)
assert boxes, "the dlib CNN found no face"
points = make_landmarker().landmarks(image, boxes[0])
assert points.shape == (68, 2)
print("setuptools", setuptools.__version__, "faces", len(boxes))
"""
# The wheel holds the learner's package only: the book-building tooling (fer_book) stays in the checkout.
WHEEL_CONTENTS_PROBE = """
import importlib.metadata, importlib.util
tops = {f.parts[0] for f in importlib.metadata.files("fer-utils")}
assert "fer_utils" in tops and "fer_book" not in tops, sorted(tops)
assert importlib.util.find_spec("fer_book") is None, "fer_book is importable after pip install"
"""


def test_weights_are_found_without_importing_face_recognition_models() -> None:
    """Its __init__ imports pkg_resources: the landmark and CNN paths must not import it (fresh process)."""
    probe = (
        "import sys, cv2\n"
        "from fer_utils.faces.crops import make_detector, make_landmarker, dlib_weights, LANDMARKS_68_WEIGHTS\n"
        "image = cv2.imread(sys.argv[1])\n"
        "box = make_detector('dlib-cnn').detect(image)[0]\n"
        "assert make_landmarker().landmarks(image, box).shape == (68, 2)\n"
        "assert dlib_weights(LANDMARKS_68_WEIGHTS).stat().st_size > 90_000_000\n"
        "print(sorted(m for m in sys.modules if m.startswith(('face_recognition_models', 'pkg_resources'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(still_paths()[0])], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_landmarks_and_cnn_detector_after_pip_install_with_newest_setuptools(tmp_path: Path) -> None:
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_CONSTRAINT")}  # the installed copy

    def pip(*args: str) -> None:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True, timeout=1200, env=env)

    source = tmp_path / "src"  # pip builds in the source tree; keep the checkout clean
    skip = shutil.ignore_patterns(".venv", ".git", "_build", "_cache", "build")

    def ignore(folder: str, names: list[str]) -> set[str]:
        """The checkout's own data/ (the sample) is left out, not the package's fer_utils/data/."""
        return skip(folder, names) | ({"data"} if Path(folder) == REPO else set())

    shutil.copytree(REPO, source, ignore=ignore)
    pip("--upgrade", "pip", "setuptools")
    pip(str(source), "dlib-bin", "opencv-python-headless<5")
    result = subprocess.run(
        [str(python), "-c", PROBE, str(still_paths()[0])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    located = subprocess.run(
        [str(python), "-c", "import fer_utils; print(fer_utils.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    )
    assert str(env_dir) in located.stdout, "the probe must use the installed package"
    major = int(result.stdout.split()[1].split(".")[0])
    assert major >= 81, result.stdout
    contents = subprocess.run(
        [str(python), "-c", WHEEL_CONTENTS_PROBE], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert contents.returncode == 0, contents.stderr[-3000:]
