"""The package's pretrained model (fer_utils/assets/pretrained/): the file its card describes, the predictions its card
recorded on real faces the package ships, and the commands and the recognizer that use it when given no model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli

from fer_utils.assets import real_media_dir
from fer_utils.deploy.pretrained import (
    CARD_FILE,
    pretrained_card,
    pretrained_dir,
    pretrained_model_file,
    pretrained_run,
)
from fer_utils.errors import SetupError
from fer_utils.registry import TTA_MODES
from fer_utils.storage.run_files import MODEL_FILE

MAX_BYTES = 2 * 1000 * 1000  # what the package may carry for its model (issue 70)


def test_the_shipped_file_is_the_one_its_card_describes_and_small() -> None:
    import hashlib

    card = pretrained_card()
    path = pretrained_model_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == card["model"]["sha256"]
    assert path.stat().st_size == card["model"]["bytes"] <= MAX_BYTES
    assert card["tta"] in TTA_MODES and card["model"]["params"] <= 600_000
    for side in card["publictest"].values():  # what the card says it scored, whole
        assert len(side["confusion"]) == len(card["classes"]) and np.sum(side["confusion"]) == side["faces"]


def test_a_damaged_or_swapped_model_file_is_refused_before_it_loads(tmp_path: Path) -> None:
    folder = tmp_path / "pretrained"
    shutil.copytree(pretrained_dir(), folder)
    data = bytearray((folder / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(SetupError, match="is not the file its card describes"):
        pretrained_run(folder)
    (folder / MODEL_FILE).unlink()
    with pytest.raises(SetupError, match="missing"):
        pretrained_model_file(folder)
    (folder / CARD_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="ships no pretrained model"):
        pretrained_model_file(folder)


def test_the_model_reads_the_cards_real_faces_as_it_did_when_it_was_made() -> None:
    """The card keeps what the model said of a few real faces the package ships, through the one inference path
    (dlib's detector, the model's crop, its TTA): the same expression and probabilities within 1e-3."""
    from fer_utils.deploy.inference import Recognizer

    recognizer = Recognizer()  # no model: the pretrained one, served with its card's TTA
    card = pretrained_card()
    assert recognizer.tta == card["tta"] and list(recognizer.classes) == card["classes"]
    assert len(card["checks"]) >= 4 and {c["emotion"] for c in card["checks"]} >= {"neutral", "happy"}
    for check in card["checks"]:
        faces = next(recognizer.stream(real_media_dir() / check["image"])).faces
        assert faces, check["image"]
        assert faces[0].emotion == check["emotion"], check["image"]
        for name, value in check["probabilities"].items():
            assert faces[0].probabilities[name] == pytest.approx(value, abs=1e-3), (check["image"], name)


def test_predict_without_a_model_answers_with_the_pretrained_one(tmp_path: Path) -> None:
    card = pretrained_card()
    check = card["checks"][0]
    out = tmp_path / "faces.json"
    code, _, stderr = run_cli(["predict", str(real_media_dir() / check["image"]), "--json", str(out)])
    assert code == 0, stderr
    faces = json.loads(out.read_text())
    assert len(faces) == 1 and faces[0]["emotion"] == check["emotion"]
    assert faces[0][f"p_{check['emotion']}"] == pytest.approx(check["probabilities"][check["emotion"]], abs=1e-3)


def test_evaluate_without_a_model_scores_the_pretrained_one_with_its_tta(tmp_path: Path) -> None:
    from fer_utils.assets import london_faces_dir

    source = tmp_path / "faces"
    for name in ("neutral", "smiling"):  # four real London faces, cropped by the CLI as a reader would
        (source / name).mkdir(parents=True)
        for image in sorted((london_faces_dir() / name).glob("*.jpg"))[:2]:
            shutil.copy2(image, source / name / image.name)
    crops = tmp_path / "crops"
    code, _, stderr = run_cli(
        ["preprocess", "--dataset", "folder", "--src", str(source), "--out", str(crops), "--quiet"]
    )
    assert code == 0, stderr
    report = tmp_path / "report.json"
    code, _, stderr = run_cli(["evaluate", "--test-crops", str(crops), "--json", str(report)])
    assert code == 0, stderr
    scored = json.loads(report.read_text())
    assert scored["frames"] == 4 and scored["tta"] == pretrained_card()["tta"]
    assert set(scored["present"]) == {"neutral", "happy"}
    code, _, stderr = run_cli(["evaluate"])
    assert code == 2 and "--test-crops C to score the package's pretrained model" in stderr
