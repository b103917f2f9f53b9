"""The paper's CNN and the compared models: parameter counts, FLOP table, safe model files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fer_utils.errors import InputError


def test_paper_cnn_has_exactly_the_papers_parameter_count() -> None:
    from fer_utils.models.networks import build_paper_cnn, count_params

    assert count_params(build_paper_cnn(8)) == 542_136  # RAVDESS, 8 classes
    assert count_params(build_paper_cnn(7)) == 542_119  # SAVEE, 7 classes: 136 - 17
    model = build_paper_cnn(8, dropout=(0.3, 0.5, 0.5), l1=0.01)
    assert [layer.rate for layer in model.layers if layer.name.startswith("dropout")] == [0.3, 0.5, 0.5]
    assert model.get_layer("fc").kernel_regularizer is not None
    assert model.get_layer("flatten").output.shape[-1] == 30_976


def test_paper_cnn_of_another_shape_is_the_same_builder_with_its_filters_and_units() -> None:
    """Chapter 3's explorer and exercise 2 vary the filters and fc's units of the one builder."""
    from fer_utils.models.networks import build_paper_cnn

    model = build_paper_cnn(8, (90, 90, 1), filters=(16, 32, 32), units=32)
    assert [model.get_layer(f"conv{n}").filters for n in (1, 2, 3)] == [16, 32, 32]
    assert model.get_layer("fc").count_params() == (11 * 11 * 32 + 1) * 32
    with pytest.raises(InputError, match="dropout and filters need 3 values"):
        build_paper_cnn(8, filters=(16, 64))


def test_paper_cnn_layer_table_and_flops() -> None:
    from fer_utils.models.networks import build_paper_cnn, count_flops, layer_table

    table = layer_table(build_paper_cnn()).set_index("layer")
    assert table.loc["pool3", "output_shape"] == (22, 22, 64)
    assert table["params"].sum() == 542_136
    # conv2: 90·90 outputs × 64 filters × 3·3·16 MACs each
    assert table.loc["conv2", "macs"] == 90 * 90 * 64 * 3 * 3 * 16
    assert table.loc["fc", "macs"] == 30_976 * 16
    assert count_flops(build_paper_cnn(), batch=2) == 2 * 2 * table["macs"].sum()


@pytest.mark.slow
def test_compared_models_at_their_canonical_inputs() -> None:
    from fer_utils.models.networks import build_model, count_params
    from fer_utils.registry import CANONICAL_INPUTS

    expected = {"alexnet": 62_378_344, "resnet50": 25_636_712, "mobilenet-v2": 3_538_984, "mini-xception": 58_423}
    for name, params in expected.items():
        shape, classes = CANONICAL_INPUTS[name]
        assert count_params(build_model(name, classes, shape)) == params, name


def test_every_registered_model_builds_at_the_fer_input() -> None:
    from fer_utils.models.networks import MODEL_BUILDERS, build_model

    for name in ("paper-cnn", "mini-xception", "mobilenet-inception"):
        model = build_model(name, 8, (96, 96, 1))
        assert model.output.shape[-1] == 8 and [layer.name for layer in model.layers[1:3]] == ["resize", "rescale"]
        assert model.input_shape == (None, None, None, 1) and model.get_layer("resize").output.shape[1:] == (96, 96, 1)
    assert {"resnet50", "alexnet", "xception", "mobilenet-v2"} <= set(MODEL_BUILDERS)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", 8)


def test_a_model_resizes_its_crops_itself_as_the_input_pipeline_did() -> None:
    """The model takes crops of any side and resizes them itself, bilinear: its output on a 180 px
    crop is its output on that crop resized by `tf.image.resize` (what the input pipeline did before), and a
    crop of its own side goes through unchanged. The parameters and FLOPs are those without the resizer."""
    import tensorflow as tf

    from fer_utils.models.networks import build_paper_cnn, count_flops, input_side

    model = build_paper_cnn(8, (32, 32, 1))
    crops = np.random.default_rng(0).integers(0, 256, (4, 180, 180, 1)).astype("float32")
    resized = tf.image.resize(crops, (32, 32)).numpy()
    np.testing.assert_allclose(model(crops).numpy(), model(resized).numpy(), atol=1e-6)
    assert (
        input_side(model) is None and model.count_params() == 62_904 and count_flops(model) == 9_765_120
    )  # as before the resizer


def test_the_light_batch_normalised_models_update_their_averages_with_momentum_09() -> None:
    """Keras's default momentum (0.99) left mini-Xception at chance on the test frames after chapter 7's
    quick run of a few hundred steps (benchmarks/README.md); every batch-norm layer the book builds uses 0.9."""
    from keras import layers

    from fer_utils.models.networks import build_model

    for name in ("mini-xception", "mobilenet-inception"):
        norms = [
            layer for layer in build_model(name, 8, (32, 32, 1)).layers if isinstance(layer, layers.BatchNormalization)
        ]
        assert norms and {layer.momentum for layer in norms} == {0.9}, name


@pytest.mark.parametrize("size", [64, 97])
def test_mini_xception_shortcut_is_a_strided_pointwise_convolution(size: int) -> None:
    """The shortcut (1×1 subsample, then stride-1 1×1 conv, which avoids a crashing oneDNN kernel)
    computes exactly Arriaga's 1×1 stride-2 "same" convolution, at even and odd feature-map sizes."""
    import keras
    import numpy as np

    from fer_utils.models.networks import build_mini_xception, layer_table

    model = build_mini_xception(7, (size, size, 1))
    table = layer_table(model).set_index("layer")
    for block, filters in enumerate((16, 32, 64, 128), start=1):
        subsample, conv = (
            model.get_layer(f"block{block}_shortcut_subsample"),
            model.get_layer(f"block{block}_shortcut_conv"),
        )
        x = np.random.default_rng(block).normal(size=(2, *subsample.input.shape[1:])).astype("float32")
        expected = keras.ops.conv(x, conv.kernel, strides=2, padding="same")
        np.testing.assert_allclose(conv(subsample(x)), expected, rtol=1e-5, atol=1e-5)
        height = -(-subsample.input.shape[1] // 2)
        assert table.loc[conv.name, "macs"] == height * height * subsample.input.shape[-1] * filters


def test_save_and_load_with_classes(tmp_path: Path) -> None:
    import numpy as np

    from fer_utils.models.networks import build_paper_cnn, load_classes, load_model, save_model

    model = build_paper_cnn(3, (32, 32, 1))
    path = save_model(model, tmp_path / "run" / "model.keras", ["neutral", "happy", "sad"])
    loaded = load_model(path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5)
    assert load_classes(path) == ["neutral", "happy", "sad"]


def test_loading_refuses_files_that_are_not_safe_models(tmp_path: Path) -> None:
    import keras

    from fer_utils.models.networks import load_classes, load_model

    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(InputError, match="not a Keras model file"):
        load_model(text)
    empty_zip = tmp_path / "empty.keras"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("readme.txt", "no config here")
    with pytest.raises(InputError, match="not a loadable"):
        load_model(empty_zip)
    with pytest.raises(InputError, match="no such model file"):
        load_model(tmp_path / "missing.keras")

    # A crafted model whose Lambda layer would run arbitrary Python code when deserialized.
    inputs = keras.Input((4,))
    crafted = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    crafted.save(tmp_path / "crafted.keras")
    with zipfile.ZipFile(tmp_path / "crafted.keras") as archive:
        assert "Lambda" in json.dumps(json.loads(archive.read("config.json")))
    with pytest.raises(InputError, match="(?i)lambda|unsafe"):
        load_model(tmp_path / "crafted.keras")
    with pytest.raises(InputError, match="no classes.json"):
        load_classes(tmp_path / "crafted.keras")


def test_paper_cnn_initialiser_keeps_the_architecture() -> None:
    """He initialisation of the ReLU layers is an option of the recipe, not a new architecture."""
    import keras

    from fer_utils.models.networks import build_paper_cnn, count_params

    model = build_paper_cnn(8, init="he_uniform")
    assert count_params(model) == 542_136
    for name in ("conv1", "conv2", "conv3", "fc"):
        assert isinstance(model.get_layer(name).kernel_initializer, keras.initializers.HeUniform), name
    assert isinstance(build_paper_cnn(8).get_layer("fc").kernel_initializer, keras.initializers.GlorotUniform)
    with pytest.raises(ValueError, match="unknown initialiser"):
        build_paper_cnn(8, init="zeros")
