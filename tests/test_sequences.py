"""The CNN-LSTM over a clip's frames: clips as sequences (`fer_utils.train.sequences`), the model in the
registry, trained through `train` on the sample's clips under the clip protocol, and its run folder loaded,
predicted on a video and quantized like a frame model's; the paper's cited LSTM and VGG-Face+LSTM counted.

The crops are the embedded sample's (384 RAVDESS-named clips, 6 frames each, 180 px), preprocessed once into
the artefact cache (`artifacts.Dataset().crops()`; `make test` finds them made by `make book`); one 2-epoch
run (`train.fit.train_run` on a `sequences.ClipData`, the network reading 32 px: its frame CNN resizes each crop)
is shared by the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_cli

from fer_utils.registry import PAPER_FRAMES, PAPER_LSTM_PARAMS_RATIO, PAPER_PARAMS, SEQUENCE_FRAMES

SIDE = 32


def frames_of(clips: dict[str, list[int]], emotion: str = "happy") -> pd.DataFrame:
    """Manifest-like rows: for each clip, one row per given frame index (listed in that order)."""
    rows = [
        {"clip_id": clip, "subject": clip[:2], "emotion": emotion, "frame_index": i, "image": f"{clip}_f{i:03d}.png"}
        for clip, indices in clips.items()
        for i in indices
    ]
    return pd.DataFrame(rows)


def test_a_clip_gives_n_frames_in_order_and_a_short_clip_repeats_its_own() -> None:
    from fer_utils.train.sequences import CLIP_IMAGES, clip_table, frame_positions

    assert frame_positions(6, 6) == [0, 1, 2, 3, 4, 5]
    assert frame_positions(4, 6) == [0, 1, 1, 2, 3, 3]  # fewer usable frames: each once or twice, in order
    assert frame_positions(12, 6) == [1, 3, 5, 7, 9, 11]  # more: the centres of six equal segments
    assert frame_positions(1, 6) == [0] * 6
    table = clip_table(frames_of({"b": [5, 0, 3, 1, 4, 2], "a": [7, 2, 9, 4]}))
    assert list(table["clip_id"]) == ["b", "a"]  # the order clips first appear
    assert json.loads(table.loc[0, CLIP_IMAGES]) == [f"b_f{i:03d}.png" for i in range(6)]  # by frame_index
    assert json.loads(table.loc[1, CLIP_IMAGES]) == [f"a_f{i:03d}.png" for i in (2, 4, 4, 7, 9, 9)]
    assert list(table["n_frames"]) == [6, 4]
    assert table.loc[1, "image"] == "a_f007.png" and table.loc[1, "frame_index"] == 7  # its middle chosen frame


def test_a_clip_whose_frames_disagree_on_the_emotion_is_refused() -> None:
    from fer_utils.errors import InputError
    from fer_utils.train.sequences import clip_table

    frames = pd.concat([frames_of({"a": [0, 1]}), frames_of({"a": [2]}, emotion="sad")])
    with pytest.raises(InputError, match="different emotions"):
        clip_table(frames)


@pytest.mark.parametrize("empty", ["train", "test"])
def test_a_split_with_an_empty_side_is_an_input_error_for_clips_too(empty: str) -> None:
    from fer_utils.data.splits import Split
    from fer_utils.errors import InputError
    from fer_utils.train.sequences import clip_split

    frames = frames_of({"a": [0, 1, 2], "b": [0, 1]})
    sides = {"train": frames, "test": frames, empty: frames.iloc[:0]}
    with pytest.raises(InputError, match="the split left"):  # was a bare KeyError
        clip_split(Split(**sides))


def test_the_cnn_lstm_is_the_paper_cnn_over_the_clip_and_is_counted() -> None:
    from fer_utils.models.networks import (
        build_model,
        build_paper_cnn,
        count_flops,
        count_params,
        fixed_input,
        layer_table,
        network_side,
        smallest_side,
    )
    from fer_utils.registry import CANONICAL_INPUTS, MODEL_NAMES, SEQUENCE_MODELS

    assert "cnn-lstm" in MODEL_NAMES and "cnn-lstm" in SEQUENCE_MODELS and SEQUENCE_FRAMES == PAPER_FRAMES
    shape, classes = CANONICAL_INPUTS["cnn-lstm"]
    model = build_model("cnn-lstm", classes, shape)
    assert model.input_shape == (None, PAPER_FRAMES, None, None, 1)  # crops of any side: each frame resized
    assert network_side(model) == 180
    frame = build_paper_cnn(classes)
    body = count_params(frame) - (16 * classes + classes)  # the paper CNN without its softmax layer
    units = model.get_layer("lstm").units
    lstm = 4 * units * (16 + units + 1)
    assert count_params(model) == body + lstm + units * classes + classes
    table = layer_table(model).set_index("layer")
    assert table.loc["frames", "flops"] == PAPER_FRAMES * (count_flops(frame) - 2 * 16 * classes)
    assert table.loc["lstm", "macs"] == PAPER_FRAMES * 4 * units * (16 + units)
    small = build_model("cnn-lstm", 7, (48, 48, 1))
    assert small.input_shape == (None, SEQUENCE_FRAMES, None, None, 1) and network_side(small) == 48
    assert fixed_input(small, 64).input_shape == (None, SEQUENCE_FRAMES, 64, 64, 1)  # an exported clip model
    assert smallest_side("cnn-lstm") == smallest_side("paper-cnn") == 8


@pytest.mark.slow
def test_the_papers_lstm_and_vgg_face_lstm_counted_at_full_size() -> None:
    """The paper: its CNN has 542,136 parameters, the LSTM it concedes 116.5 times as many (about 63 M)."""
    from fer_utils.models.cited_lstms import build_landmark_lstm, build_vggface_lstm
    from fer_utils.models.networks import build_paper_cnn, count_flops, count_params

    assert count_params(build_paper_cnn(8)) == PAPER_PARAMS
    lstm = count_params(build_landmark_lstm(8))
    assert 62e6 < PAPER_LSTM_PARAMS_RATIO * PAPER_PARAMS < 64e6
    assert abs(lstm / PAPER_PARAMS - PAPER_LSTM_PARAMS_RATIO) / PAPER_LSTM_PARAMS_RATIO < 0.01
    vggface = build_vggface_lstm(8)
    assert count_params(vggface) == 134_260_544 + 4 * 512 * (4096 + 512 + 1) + 512 * 8 + 8  # VGG16 to fc7
    assert count_flops(vggface) > 150e9  # six 224×224 frames through VGG16


@pytest.fixture(scope="module")
def sample_crops() -> Path:
    """The sample's crops (384 clips, 6 frames each, 180 px), made once in the artefact cache."""
    from fer_utils.book import artifacts

    return artifacts.Dataset().crops()


@pytest.fixture(scope="module")
def trained(sample_crops: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CNN-LSTM trained through `train.fit.train_run` on the sample's clips (`sequences.ClipData`, no protocol
    named: the clip protocol), its network reading 32 px, for 2 epochs."""
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import train_run
    from fer_utils.train.sequences import ClipData

    run = tmp_path_factory.mktemp("runs") / "cnn_lstm"
    config = TrainConfig(model="cnn-lstm", image_size=(SIDE, SIDE), epochs=2, seed=0)
    return train_run(None, ClipData(sample_crops), config, run, verbose=0).path


@pytest.mark.slow
def test_the_cnn_lstm_trains_on_the_samples_clips_under_the_clip_protocol(trained: Path, sample_crops: Path) -> None:
    from fer_utils.data.manifest import load_manifest, usable_frames
    from fer_utils.train.runs import RunFolder

    run = RunFolder(trained)
    assert run.is_complete()
    config, metrics = run.config(), run.metrics()
    assert config["model"] == "cnn-lstm" and config["protocol"] == "clip"
    clips = usable_frames(load_manifest(sample_crops))["clip_id"].nunique()
    assert clips == 384 and sum(config["sizes"].values()) == clips  # one example per clip
    test, probabilities, classes = run.test_predictions()
    assert len(test) == config["sizes"]["test"] == test["clip_id"].nunique()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert metrics["test"]["frame"] == metrics["test"]["clip"]  # each test row is a whole clip
    assert len(run.history()) == 2
    assert run.crop_spec().side == 180 and (trained / "crop_spec.json").is_file()  # the crops' spec, as any run


@pytest.mark.slow
def test_the_cnn_lstm_run_loads_predicts_a_video_and_quantizes(
    trained: Path, sample_crops: Path, tmp_path: Path
) -> None:
    from fer_utils.book import artifacts
    from fer_utils.data.manifest import load_manifest, usable_frames
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.deploy.tflite import tflite_predict
    from fer_utils.errors import InputError
    from fer_utils.models.networks import network_side
    from fer_utils.train.runs import RunFolder
    from fer_utils.train.sequences import clip_table, load_clips, predict_clip

    run = RunFolder(trained)
    model = run.load()
    assert model.input_shape == (None, SEQUENCE_FRAMES, None, None, 1) and network_side(model) == SIDE
    with pytest.raises(InputError, match="reads clips"):  # the frame recognizer refuses it, by name
        Recognizer(model, run.classes())
    video = sorted(artifacts.ensure_sample().glob("Actor_01/*.mp4"))[0]
    code, out, err = run_cli(
        ["predict", str(video), "--model", str(run.model_file), "--json", str(tmp_path / "p.json")]
    )
    assert code == 0, err
    [row] = json.loads((tmp_path / "p.json").read_text())
    direct = predict_clip(model, run.classes(), video, run.crop_spec())  # the same answer through the library
    assert direct["emotion"][0] == row["emotion"] and direct["faces"][0] == row["faces"]
    assert row["frames"] == SEQUENCE_FRAMES and row["faces"] >= 1 and row["emotion"] in run.classes()
    assert sum(row[f"p_{name}"] for name in run.classes()) == pytest.approx(1, abs=1e-5)
    code, _, err = run_cli(["predict", str(video), "--model", str(run.model_file), "--out", str(tmp_path / "a.mp4")])
    assert code == 2 and "reads whole clips" in err
    clips = clip_table(usable_frames(load_manifest(sample_crops))).head(48)
    images = load_clips(clips, sample_crops)  # the crops at their own 180 px, as the exported file takes them
    assert images.shape == (48, SEQUENCE_FRAMES, 180, 180, 1)
    expected = model.predict(images, verbose=0)
    sizes = {}
    for mode, tolerance in (("float32", 1e-5), ("float16", 1e-2), ("int8", 0.1)):  # int8: calibrated on clips
        out = tmp_path / mode / "model.tflite"
        argv = ["quantize", "--model", str(run.model_file), "--mode", mode, "--out", str(out)]
        argv += ["--crops", str(sample_crops), "--samples", "32"]
        code, _, err = run_cli(argv)
        assert code == 0, err
        probabilities = tflite_predict(out.read_bytes(), images)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.02)
        np.testing.assert_allclose(probabilities, expected, atol=tolerance, err_msg=mode)
        sizes[mode] = out.stat().st_size
    assert sizes["int8"] < sizes["float32"] / 2


def test_a_sequence_model_refuses_the_random_protocol_before_writing_anything(
    sample_crops: Path, tmp_path: Path
) -> None:
    from fer_utils.errors import InputError
    from fer_utils.models.networks import build_cnn_lstm
    from fer_utils.train.config import TrainConfig, check_config
    from fer_utils.train.fit import train_run
    from fer_utils.train.sequences import ClipData

    with pytest.raises(InputError, match="frames of one clip on both sides"):
        check_config(TrainConfig(model="cnn-lstm", protocol="random", image_size=(SIDE, SIDE)))
    check_config(TrainConfig(model="cnn-lstm", protocol="subject", image_size=(SIDE, SIDE)))
    # a chapter's own builder under the registry's default model name: the clip data refuses the split itself
    config = TrainConfig(protocol="random", image_size=(SIDE, SIDE), epochs=1)
    with pytest.raises(InputError, match="frames of one clip on both sides"):
        train_run(build_cnn_lstm, ClipData(sample_crops), config, tmp_path / "api_run", verbose=0)
    assert not (tmp_path / "api_run").exists()
    argv = ["train", "--crops", str(sample_crops), "--out", str(tmp_path / "run"), "--model", "cnn-lstm"]
    code, _, err = run_cli([*argv, "--protocol", "random"])
    assert code == 2 and "use --protocol clip, subject or given" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("count", [1, 3])
def test_a_clip_models_answer_on_a_short_video_says_how_many_frames_it_read(
    stills: list[Path], tmp_path: Path, count: int
) -> None:
    """The CNN-LSTM's `predict` on a 1–3-frame video reported 6 frames (the model's N, repeated ones counted)."""
    import keras
    from test_deploy import write_clip

    from fer_utils.faces.crops import CropSpec
    from fer_utils.models.networks import build_cnn_lstm
    from fer_utils.train.sequences import predict_clip

    keras.utils.set_random_seed(0)
    model = build_cnn_lstm(2, (6, 32, 32, 1))
    video = write_clip(tmp_path / "short.mp4", stills[0], count)
    [row] = predict_clip(model, ["neutral", "happy"], video, CropSpec(side=32)).to_dict("records")
    assert row["frames"] == count and 1 <= row["faces"] <= count


@pytest.mark.parametrize("options", [["--mix", "mixup"], ["--random-erasing", "1", "--intensity", "1"]])
def test_a_clip_model_refuses_batch_augmentation_it_would_never_apply(tmp_path: Path, options: list[str]) -> None:
    """Issue 74: `train --model cnn-lstm --recipe wild` with `--mix mixup`, or with `--random-erasing 1 --intensity
    1`, wrote the same history.csv as without them while config.json recorded them: the clip pipeline never
    augments batches. Refused now, by name, before anything is written; the API (`ClipData`) refuses it too."""
    from toy_data import make_toy_crops

    from fer_utils.errors import InputError
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import train_run
    from fer_utils.train.sequences import ClipData

    crops, run = tmp_path / "crops", tmp_path / "run"
    make_toy_crops(crops, size=SIDE)
    argv = ["train", "--crops", str(crops), "--model", "cnn-lstm", "--recipe", "wild", "--epochs", "2"]
    code, _, err = run_cli([*argv, "--out", str(run), *options])
    assert code == 2 and "would be recorded but never applied" in err and len(err.strip().splitlines()) == 1
    assert all(flag in err for flag in options[::2])
    assert not run.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["crops"]
    config = TrainConfig(model="cnn-lstm", image_size=(SIDE, SIDE), epochs=1, mix="cutmix")
    with pytest.raises(InputError, match=r"mix \(--mix\) would be recorded but never applied"):
        train_run(None, ClipData(crops), config, run, verbose=0)
    assert not run.exists()
