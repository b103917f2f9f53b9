"""What `book build` puts in the demo page's folder: the model export and the vendored runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_book.demo import (
    DEMO_MODEL_FILE,
    DEMO_MODEL_INFO,
    DEMO_PACKAGES,
    FACE_DETECTOR_FILE,
    export_demo_model,
    licenses_text,
    vendor_demo_runtime,
)
from fer_utils.artifacts import default_cache
from fer_utils.errors import ModelFileError


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small paper CNN (48x48 gray, 3 classes) saved with classes.json and a run's metrics.json."""
    import keras

    from fer_utils.models import build_paper_cnn, save_model

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("run")
    path = save_model(
        build_paper_cnn(num_classes=3, input_shape=(48, 48, 1)), folder / "model.keras", ["neutral", "happy", "sad"]
    )
    (folder / "metrics.json").write_text(json.dumps({"test": {"frame": {"accuracy": 0.625}}}))
    return path


def test_export_writes_a_batch_one_tflite_that_matches_keras(small_model: Path, tmp_path: Path) -> None:
    from fer_utils.deploy import tflite_interpreter, tflite_predict
    from fer_utils.models import load_model

    export_demo_model(small_model, tmp_path, {"trained_on": "nothing (a test)", "license": "MIT"})
    info = json.loads((tmp_path / DEMO_MODEL_INFO).read_text())
    assert info["classes"] == ["neutral", "happy", "sad"] and info["input_shape"] == [48, 48, 1]
    assert info["accuracy"] == 0.625 and info["trained_on"] == "nothing (a test)"
    model_bytes = (tmp_path / DEMO_MODEL_FILE).read_bytes()
    assert list(tflite_interpreter(model_bytes).get_input_details()[0]["shape"]) == [1, 48, 48, 1]
    crop = np.random.default_rng(0).integers(0, 256, (1, 48, 48, 1)).astype(np.float32)
    expected = load_model(small_model).predict(crop, verbose=0)
    assert np.allclose(tflite_predict(model_bytes, crop), expected, atol=1e-5)


def test_export_refuses_a_colour_model(tmp_path: Path) -> None:

    from fer_utils.models import build_paper_cnn, save_model

    path = save_model(build_paper_cnn(num_classes=2, input_shape=(48, 48, 3)), tmp_path / "rgb.keras", ["a", "b"])
    with pytest.raises(ModelFileError, match="gray crops"):
        export_demo_model(path, tmp_path / "out", {})
    assert not (tmp_path / "out" / DEMO_MODEL_FILE).exists()


def test_the_runtime_is_vendored_with_its_import_pointed_at_the_local_copy(tmp_path: Path) -> None:
    written = vendor_demo_runtime(tmp_path, default_cache())
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert {
        "litert/index.js",
        "litert/wasm/litert_wasm_internal.wasm",
        "litert/wasm/litert_wasm_compat_internal.js",
        FACE_DETECTOR_FILE,
    } <= names
    index = (tmp_path / "litert" / "index.js").read_text()
    assert '"@litertjs/wasm-utils"' not in index and 'from "./wasm-utils.js"' in index
    assert (tmp_path / "litert" / "wasm-utils.js").is_file()
    assert all(p.spec in licenses_text() and p.license in licenses_text() for p in DEMO_PACKAGES)
