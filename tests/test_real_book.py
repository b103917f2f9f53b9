"""The whole book on real data: every chapter executes with `book execute --param DATASET=folder
--param DATA_DIR=…` on a folder of real faces with few people, and nothing it prints calls that data
synthetic.

The folder is made from the real London faces shipped with the package (CC BY 4.0): eight people,
neutral and smiling, laid out as a reader might have them (`smiling/` is a synonym of *happy*, one
subfolder per person). The chapters run with small sizes (`--param IMAGE_SIZE=32 …`) so that the test
takes minutes; what it checks is that they run and what they say, not their accuracy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fer_book.toc import toc_notebooks
from fer_utils.assets import london_faces_dir

REPO = Path(__file__).resolve().parents[1]
PEOPLE = 8
QUICK = {
    "IMAGE_SIZE": 32,
    "LONDON_SIZE": 32,
    "EPOCHS": 2,
    "LONDON_EPOCHS": 2,
    "SEEDS": [0],
    "RANDOM_SEEDS": [0],
    "LATENCY_REPEATS": 1,
    "SPEED_FRAMES": 2,
    "SPARSITIES": [0.5],
}


def real_folder(root: Path, people: int = PEOPLE) -> Path:
    """`<root>/neutral/<person>/NNN_03.jpg` and `<root>/smiling/<person>/NNN_08.jpg` for the first `people`."""
    source = london_faces_dir()
    ids = sorted(p.stem.split("_")[0] for p in (source / "neutral").glob("*_03.jpg"))[:people]
    for person in ids:
        for folder, suffix in (("neutral", "03"), ("smiling", "08")):
            target = root / folder / f"person{person}" / f"{person}_{suffix}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / folder / f"{person}_{suffix}.jpg", target)
    return root


def output_text(notebook: Path) -> str:
    """Everything a notebook printed or displayed as text (streams, plain-text and markdown results)."""
    texts = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            data = output.get("data", {})
            texts += [data.get("text/plain", ""), data.get("text/markdown", ""), data.get("text/html", "")]
    return "\n".join(t if isinstance(t, str) else "".join(t) for t in texts)


@pytest.mark.slow
def test_every_chapter_runs_on_a_real_folder_and_never_calls_it_synthetic(tmp_path: Path) -> None:
    data = real_folder(tmp_path / "london_eight")
    stage = tmp_path / "stage"
    params = ["--param", "DATASET=folder", "--param", f"DATA_DIR={data}"]
    for name, value in QUICK.items():
        params += ["--param", f"{name}={value!r}"]
    env = {**os.environ, "FER_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "fer_book", "execute", "--out", str(stage), *params],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    times = json.loads((stage / "execution_times.json").read_text())
    notebooks = toc_notebooks(REPO)
    assert len(times["seconds"]) == len(notebooks) and not times["failed"]
    assert times["parameters"]["DATASET"] == "folder"
    assert "does not declare" in result.stdout + result.stderr  # e.g. chapter 1 takes no EPOCHS: a warning
    for notebook in notebooks:
        text = output_text(stage / notebook)
        assert "synthetic" not in text.lower(), f"{notebook.name} calls the real folder synthetic"
    chapter4 = output_text(stage / "notebooks" / "04_training.ipynb")
    assert f"folder ({data.name})" in chapter4 and f"{PEOPLE} subjects" in chapter4
