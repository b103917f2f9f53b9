"""The Colab first cell's runtime check, in subprocesses that simulate Colab's conditions.

Colab is simulated by a real `google/colab` package folder on PYTHONPATH; pip replacing numpy under
a running kernel by writing the metadata of another numpy version into a folder ahead on sys.path
after numpy was imported (what `importlib.metadata` then reads, as after a real reinstall).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fer_utils.book.colab import RESTART_ADVICE, check_runtime

REPO = Path(__file__).resolve().parents[1]


def fake_colab(tmp_path: Path) -> Path:
    """A folder holding an importable `google.colab` package, like Colab's."""
    package = tmp_path / "colab_site" / "google" / "colab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Stands for Colab\'s module in these tests."""\n')
    return package.parents[1]


def run_cell(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    """Run `body` in a fresh Python that has imported numpy and google.colab, like a Colab kernel."""
    site = fake_colab(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    script = "import numpy\nimport google.colab\n" + body
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )


REPLACE_NUMPY = """
import pathlib, sys
newer = pathlib.Path("pip_target")
info = newer / "numpy-99.0.0.dist-info"
info.mkdir(parents=True)
(info / "METADATA").write_text("Metadata-Version: 2.1\\nName: numpy\\nVersion: 99.0.0\\n")
sys.path.insert(0, str(newer.resolve()))
"""


def test_a_numpy_replaced_under_the_kernel_is_reported_with_restart_advice(tmp_path: Path) -> None:
    result = run_cell(
        tmp_path,
        REPLACE_NUMPY
        + """
from fer_utils.book.colab import check_runtime
report = check_runtime()
assert report.needs_restart and report.numpy_installed == "99.0.0", report
assert "tensorflow" not in sys.modules, "TensorFlow must not be imported over a changed numpy"
""",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "numpy changed under this kernel" in result.stdout and "99.0.0" in result.stdout
    assert RESTART_ADVICE in result.stdout


def test_the_install_cell_stops_with_the_restart_advice_before_tensorflow_over_a_replaced_numpy(
    tmp_path: Path,
) -> None:
    """Each chapter's install cell checks the runtime after its `%pip install` (here: pip's work done by hand):
    over a replaced numpy it raises an ImportError that says to restart, before anything imports TensorFlow
    (importing the kit did this: a side effect)."""
    from fer_book.links import book_links

    lines = "".join(book_links(REPO / "_config.yml").install_cell()).splitlines()
    (pip,) = [i for i, line in enumerate(lines) if line.lstrip().startswith("%pip install")]
    check = textwrap.dedent("\n".join(lines[pip + 1 :]))
    result = run_cell(
        tmp_path,
        REPLACE_NUMPY
        + "try:\n"
        + textwrap.indent(check, "    ")
        + """
except ImportError as error:
    assert "Restart the session" in str(error), error
    assert "tensorflow" not in sys.modules, "TensorFlow must not be imported over a changed numpy"
    print("stopped")
""",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.rstrip().endswith("stopped") and RESTART_ADVICE in result.stdout


@pytest.mark.slow
def test_an_unchanged_numpy_goes_on_to_report_the_gpu(tmp_path: Path) -> None:
    result = run_cell(
        tmp_path,
        """
from fer_utils.book.colab import check_runtime
import tensorflow as tf
report = check_runtime()
assert not report.needs_restart
assert report.gpus == [d.name for d in tf.config.list_physical_devices("GPU")]
""",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TensorFlow sees" in result.stdout  # "no GPU" on CI, "1 GPU(s)" on a GPU runtime


def test_outside_colab_it_does_nothing(capsys: pytest.CaptureFixture) -> None:
    assert "google.colab" not in sys.modules
    assert check_runtime() is None
    assert capsys.readouterr().out == ""
