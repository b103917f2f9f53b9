"""Light-weight deployment: TFLite conversion and quantization, magnitude pruning, size and latency
measurements, and emotion prediction on the faces of an image or a video (with annotated output).

**Quantization** uses the TFLite converter's post-training modes: `float32` (plain conversion),
`float16` (weights stored as float16) and `int8` (full integer: weights and activations int8, with
a representative dataset for the activation ranges; input and output uint8, so raw pixel crops go
in unchanged). `tflite_predict` quantizes inputs and dequantizes outputs with the tensors' own
scales, so every mode returns probabilities.

**Pruning.** tensorflow-model-optimization only supports Keras 2 (tf_keras); its maintainers have
no plan for Keras 3 (tensorflow/model-optimization#1119). `prune_magnitude` therefore implements
plain one-shot magnitude pruning: in every Conv2D/Dense kernel the smallest-|w| fraction is set to
zero; `PruningMask` keeps those zeros during fine-tuning. Sparse weights do not make the dense
TFLite model smaller or faster by themselves; they compress better (zip) and show how much of the
network is redundant.

**Latency** is the median wall time of repeated batch calls after warm-up: Keras via
`model.predict_on_batch` (Keras's call for one small batch) and TFLite via `Interpreter.invoke`
with the same number of threads TensorFlow uses by default.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.registry import DEFAULT_DETECTOR, DEFAULT_MARGIN, TFLITE_MODES


def representative_dataset(images: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's calibration input: a function that yields the images one at a time, each as the
    list of the model's inputs (here one batch of one), in float32 raw pixels like the training crops."""
    images = np.asarray(images, dtype=np.float32)

    def one_at_a_time() -> Iterator[list[np.ndarray]]:
        for image in images:
            yield [image[None]]

    return one_at_a_time


def quantize_int8(converter: tf.lite.TFLiteConverter, representative: np.ndarray | None) -> None:
    """Set `converter` to full integer: int8 weights and activations, whose ranges it measures by
    running `representative` images through the float model; uint8 input and output (raw pixels in)."""
    if representative is None or len(representative) == 0:
        raise ValueError("int8 quantization needs representative images (a few hundred training crops)")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(representative)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8


def quantize_float16(converter: tf.lite.TFLiteConverter) -> None:
    """Set `converter` to store the weights as float16 (half the bytes); the arithmetic stays float."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def to_tflite(model: keras.Model, mode: str = "float32", representative: np.ndarray | None = None) -> bytes:
    """The model as a TFLite flatbuffer; `int8` needs `representative` raw-pixel images (N, H, W, 1)."""
    if mode not in TFLITE_MODES:
        raise ValueError(f"unknown TFLite mode {mode!r}; choose one of {TFLITE_MODES}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float16":
        quantize_float16(converter)
    elif mode == "int8":
        quantize_int8(converter, representative)
    return converter.convert()


def tflite_interpreter(model_bytes: bytes, num_threads: int | None = None) -> tf.lite.Interpreter:
    """A TFLite interpreter for `model_bytes` (tf.lite's deprecation notice about LiteRT silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=model_bytes, num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input → the input tensor's dtype, using its (scale, zero point) when it is quantized."""
    scale, zero = detail["quantization"]
    dtype = detail["dtype"]
    if scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    """Output tensor → float32 probabilities."""
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale if scale else y.astype(np.float32)


def tflite_predict(model_bytes: bytes | tf.lite.Interpreter, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities for raw-pixel `images` (N, H, W, 1) from a TFLite model, `batch_size` at a time."""
    interpreter = model_bytes if isinstance(model_bytes, tf.lite.Interpreter) else tflite_interpreter(model_bytes)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    images = np.asarray(images, dtype=np.float32)
    results = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        if tuple(inp["shape"]) != batch.shape:
            interpreter.resize_tensor_input(inp["index"], batch.shape)
            interpreter.allocate_tensors()
            inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        interpreter.set_tensor(inp["index"], _quantize(batch, inp))
        interpreter.invoke()
        results.append(_dequantize(interpreter.get_tensor(out["index"]), out))
    return np.concatenate(results) if results else np.zeros((0, out["shape"][-1]), np.float32)


def median_seconds(call: Callable[[], object], repeats: int = 30, warmup: int = 3) -> float:
    """Median wall time of `call()` over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def keras_latency(model: keras.Model, batch: np.ndarray, repeats: int = 30) -> float:
    """Median seconds of `model.predict_on_batch(batch)`."""
    return median_seconds(lambda: model.predict_on_batch(batch), repeats)


def tflite_latency(model_bytes: bytes, batch: np.ndarray, repeats: int = 30) -> float:
    """Median seconds of one TFLite invoke on `batch` (input quantized beforehand, as a device would)."""
    interpreter = tflite_interpreter(model_bytes)
    inp = interpreter.get_input_details()[0]
    if tuple(inp["shape"]) != batch.shape:
        interpreter.resize_tensor_input(inp["index"], batch.shape)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], _quantize(np.asarray(batch, np.float32), inp))
    return median_seconds(interpreter.invoke, repeats)


def keras_file_size(model: keras.Model, folder: Path) -> int:
    """Bytes of the model saved as .keras in `folder`."""
    path = Path(folder) / f"{model.name}.keras"
    model.save(path)
    return path.stat().st_size


def deployment_table(
    model: keras.Model,
    blobs: dict[str, bytes],
    test_images: np.ndarray,
    test_labels: np.ndarray,
    folder: Path,
    repeats: int = 30,
) -> pd.DataFrame:
    """Size, batch-1 latency and accuracy of the Keras float32 model and of each TFLite flatbuffer in
    `blobs` (mode → bytes) on one test set; `speedup` and `accuracy_change` are relative to Keras."""
    one = np.asarray(test_images[:1], np.float32)
    keras_acc = float(np.mean(model.predict(test_images, verbose=0).argmax(1) == test_labels))
    rows = [
        {
            "variant": "keras float32",
            "bytes": keras_file_size(model, folder),
            "latency_ms": 1000 * keras_latency(model, one, repeats),
            "accuracy": keras_acc,
        }
    ]
    for mode, blob in blobs.items():
        accuracy = float(np.mean(tflite_predict(blob, test_images).argmax(1) == test_labels))
        rows.append(
            {
                "variant": f"tflite {mode}",
                "bytes": len(blob),
                "latency_ms": 1000 * tflite_latency(blob, one, repeats),
                "accuracy": accuracy,
            }
        )
    table = pd.DataFrame(rows)
    table["speedup"] = table["latency_ms"].iloc[0] / table["latency_ms"]
    table["accuracy_change"] = table["accuracy"] - keras_acc
    return table


def _prunable(layer: keras.layers.Layer) -> bool:
    """Conv2D and Dense kernels are pruned (they hold almost all weights); biases are kept."""
    return isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))


def prune_magnitude(model: keras.Model, sparsity: float) -> keras.Model:
    """A copy of `model` with the smallest `sparsity` fraction of each Conv2D/Dense kernel set to 0."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    pruned = keras.models.clone_model(model)
    pruned.set_weights(model.get_weights())
    for layer in filter(_prunable, pruned.layers):
        kernel = layer.kernel.numpy()
        threshold = np.quantile(np.abs(kernel), sparsity)
        layer.kernel.assign(np.where(np.abs(kernel) <= threshold, 0.0, kernel) if sparsity else kernel)
    return pruned


def sparsity_of(model: keras.Model) -> float:
    """Fraction of zero weights over all Conv2D/Dense kernels."""
    kernels = [layer.kernel.numpy() for layer in model.layers if _prunable(layer)]
    return float(sum((k == 0).sum() for k in kernels) / sum(k.size for k in kernels))


class PruningMask(keras.callbacks.Callback):
    """Keeps pruned (zero) kernel weights at zero after every training batch while fine-tuning."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Record which kernel weights are zero now."""
        self.masks = [(layer.kernel, layer.kernel.numpy() != 0) for layer in self.model.layers if _prunable(layer)]

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Zero the pruned weights again."""
        for kernel, mask in self.masks:
            kernel.assign(kernel.numpy() * mask)


@dataclass(frozen=True)
class FacePrediction:
    """One face in one frame: its box, the predicted emotion and every class's probability."""

    frame_index: int
    face: int
    x: int
    y: int
    w: int
    h: int
    emotion: str
    probabilities: dict[str, float]


@dataclass
class FrameResult:
    """One frame of an image or video: the frame (BGR or gray, as decoded), its faces (largest first)
    and each face's model input crop (size×size uint8 gray, same order)."""

    frame_index: int
    image: np.ndarray
    faces: list[FacePrediction]
    crops: list[np.ndarray]


def stream_frames(path: Path, every: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) of a still image, or of every (`every`-th) frame of a video, decoded once, in
    order, one frame at a time (frames in between are grabbed, not decoded), so no video is held whole."""
    from fer_utils.errors import UnreadableVideoError
    from fer_utils.video import check_media, quiet_cv2, read_image, unopenable_error

    cv2 = quiet_cv2()
    path = Path(path)
    if every is not None and every < 1:
        raise ValueError(f"every must be a positive step or None, got {every}")
    if check_media(path) == "image":
        yield 0, read_image(path)
        return
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise unopenable_error(path)
    step, index, decoded = every or 1, 0, 0
    try:
        while capture.grab():
            if index % step == 0:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    decoded += 1
                    yield index, frame
            index += 1
    finally:
        capture.release()
    if decoded == 0:
        raise UnreadableVideoError(f"{path.name}: no frame could be decoded")


def video_fps(path: Path) -> float:
    """The video's frame rate (25 when the container does not say)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return fps if fps and fps > 0 else 25.0


def refuse_overwrite(source: Path, *targets: Path | None) -> None:
    """PredictionError if an output path is the input file itself (the user's original is never overwritten)."""
    from fer_utils.errors import PredictionError

    source = Path(source).resolve()
    for target in filter(None, targets):
        target = Path(target)
        same = target.resolve() == source or (target.exists() and os.path.samefile(target, source))
        if same:
            raise PredictionError(
                f"output {target} is the input file {source.name}: it would be overwritten; choose another output path"
            )


def check_annotated_out(out: Path | None) -> None:
    """OutputError unless `out` (an annotated copy) is None, a video name (VIDEO_SUFFIXES) or an image
    format OpenCV can write: checked before any work, not after it."""
    import cv2

    from fer_utils.errors import OutputError

    if out is not None and Path(out).suffix.lower() not in VIDEO_SUFFIXES and not cv2.haveImageWriter(str(out)):
        raise OutputError(
            f"--out {out}: OpenCV cannot write an image named {Path(out).name}; use .png or .jpg, "
            f"or for a video {', '.join(VIDEO_SUFFIXES)}"
        )


class Recognizer:
    """The one inference path: face detector + model + classes → a prediction per face and frame.

    `frame(image)` classifies the faces of one image; `stream(path)` does it frame by frame for an
    image or a video (never holding the video); `predict_media(path, out=…)` returns the table and
    optionally writes the annotated copy as it goes. The CLI `predict`, the chapter 8 widgets and
    `predict_media` all call it, so they give the same table for the same media and model.
    """

    def __init__(self, model: keras.Model, classes: Sequence[str], detector: str | object = DEFAULT_DETECTOR) -> None:
        from fer_utils.errors import ModelFileError
        from fer_utils.faces import make_detector
        from fer_utils.models import check_classes

        height, width = model.input_shape[1:3]
        if height != width:
            raise ModelFileError(f"the model's input {height}×{width} is not square like the face crops")
        self.model, self.size = model, int(height)
        self.classes = check_classes(model, classes)
        self.detector = make_detector(detector) if isinstance(detector, str) else detector

    def frame(self, image: np.ndarray, frame_index: int = 0) -> FrameResult:
        """Detect every face in `image` (BGR/gray, any size), crop each as in preprocessing, classify."""
        from fer_utils.preprocess import crop_face

        boxes = self.detector.detect(image)
        crops = [crop_face(image, box, size=self.size, margin=DEFAULT_MARGIN) for box in boxes]
        if not crops:
            return FrameResult(frame_index, image, [], [])
        probabilities = np.asarray(self.model.predict_on_batch(np.stack(crops)[..., None].astype(np.float32)))
        faces = [
            FacePrediction(
                frame_index,
                i,
                box.x,
                box.y,
                box.w,
                box.h,
                self.classes[int(p.argmax())],
                {name: float(v) for name, v in zip(self.classes, p)},
            )
            for i, (box, p) in enumerate(zip(boxes, probabilities))
        ]
        return FrameResult(frame_index, image, faces, crops)

    def stream(self, path: Path, every: int | None = None) -> Iterator[FrameResult]:
        """`frame` for each (`every`-th) frame of an image or video, one at a time (see `stream_frames`)."""
        for index, image in stream_frames(Path(path), every):
            yield self.frame(image, index)

    def table(self, faces: Sequence[FacePrediction]) -> pd.DataFrame:
        """The predictions as a table (`predictions_table`)."""
        return predictions_table(faces, self.classes)

    def predict_media(self, path: Path, every: int | None = None, out: Path | None = None) -> pd.DataFrame:
        """Every face of an image or of every (`every`-th) video frame as a table; with `out`, also the
        annotated image or mp4v video, written frame by frame into a temporary file renamed at the end."""
        path = Path(path)
        refuse_overwrite(path, out)
        faces: list[FacePrediction] = []
        with AnnotatedWriter(out, video_fps(path) / (every or 1)) as writer:
            for result in self.stream(path, every):
                faces.extend(result.faces)
                writer.write(annotate(result.image, result.faces))
        return self.table(faces)


class AnnotatedWriter:
    """Writes annotated frames to `out` (an image: the first frame; otherwise an mp4v video) through a
    temporary file renamed into place on success; does nothing when `out` is None."""

    def __init__(self, out: Path | None, fps: float) -> None:
        self.out, self.fps, self.writer, self.image = (Path(out) if out else None), fps, None, None
        self.tmp = self.out.with_name(f".{self.out.stem}.tmp-{os.getpid()}{self.out.suffix}") if self.out else None

    def __enter__(self) -> AnnotatedWriter:
        return self

    def write(self, frame: np.ndarray) -> None:
        """Add one annotated frame (BGR)."""
        import cv2

        if self.out is None:
            return
        if self.out.suffix.lower() not in VIDEO_SUFFIXES:
            self.image = self.image if self.image is not None else frame  # a still: the first frame
            return
        if self.writer is None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            height, width = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
        self.writer.write(frame)

    def __exit__(self, kind: type | None, *_: object) -> None:
        import cv2

        if self.writer is not None:
            self.writer.release()
        if self.out is None:
            return
        if kind is None and self.image is not None:
            self._write_image(cv2)
            return
        if kind is None and self.tmp.exists():
            os.replace(self.tmp, self.out)
        elif self.tmp.exists():
            self.tmp.unlink()

    def _write_image(self, cv2: Any) -> None:
        """Encode the annotated still by its suffix and write it atomically: a full disk or a read-only
        place is an OutputError naming --out (OpenCV's imwrite only returns False)."""
        from fer_utils.outputs import write_atomic

        try:
            ok, encoded = cv2.imencode(self.out.suffix, self.image)
        except cv2.error:
            ok = False
        if not ok:
            raise ValueError(f"cannot write an image named {self.out.name} (unknown extension?)")
        write_atomic(self.out, encoded.tobytes(), "--out")


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


def predictions_table(predictions: Sequence[FacePrediction], classes: Sequence[str]) -> pd.DataFrame:
    """One row per face: frame_index, face, box, emotion, then one probability column per class."""
    from fer_utils.runs import probability_columns

    columns = probability_columns(classes)
    rows = [
        {
            **{k: getattr(p, k) for k in ("frame_index", "face", "x", "y", "w", "h", "emotion")},
            **{column: p.probabilities[c] for column, c in zip(columns, classes)},
        }
        for p in predictions
    ]
    return pd.DataFrame(rows, columns=["frame_index", "face", "x", "y", "w", "h", "emotion", *columns])


def annotate(image: np.ndarray, predictions: Sequence[FacePrediction]) -> np.ndarray:
    """A BGR copy of `image` with each face's box and "emotion probability" label drawn on it."""
    import cv2

    from fer_utils.faces import to_uint8

    canvas = to_uint8(image)
    canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR) if canvas.ndim == 2 else canvas[..., :3].copy()
    # The label scales with the frame (a frame is often shown a third of its size) and sits on a black
    # band, so that it stays readable on any background.
    scale = max(0.5, max(canvas.shape[:2]) / 400)
    thickness = max(1, round(scale * 1.5))
    for p in predictions:
        cv2.rectangle(canvas, (p.x, p.y), (p.x + p.w, p.y + p.h), (0, 255, 0), thickness + 1)
        label = f"{p.emotion} {p.probabilities[p.emotion]:.2f}"
        (width, height), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        band = height + baseline + 6
        above = p.y - thickness - 1 - band  # the band sits on the box's top edge, not over it
        top = above if above >= 0 else p.y + thickness + 2  # no room above the face: inside the box
        cv2.rectangle(canvas, (p.x, top), (p.x + width + 6, top + band), (0, 0, 0), -1)
        origin = (p.x + 3, top + height + 3)
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 0), thickness, cv2.LINE_AA)
    return canvas


def predict_media(
    model: keras.Model,
    classes: Sequence[str],
    path: Path,
    *,
    detector: str = DEFAULT_DETECTOR,
    every: int | None = None,
    out: Path | None = None,
) -> pd.DataFrame:
    """Emotions of every face in an image, or in every (`every`-th) frame of a video, streamed; optionally
    the annotated image or video (mp4v) in `out` (never the input itself). Returns `predictions_table`."""
    return Recognizer(model, classes, detector).predict_media(Path(path), every=every, out=out)
