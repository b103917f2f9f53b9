"""Light-weight deployment: TFLite conversion and quantization, magnitude pruning, size and latency
measurements, and a run's export (inference on images and videos is fer_utils.deploy.inference).

Pruning is one-shot because tensorflow-model-optimization supports Keras 2 only (tensorflow/model-optimization#1119).
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from fer_utils.data.corpora import IMAGE_SUFFIXES
from fer_utils.data.media import read_image
from fer_utils.errors import InputError, OutputError
from fer_utils.faces.crops import CropSpec, largest_face_crop, make_detector, served_spec
from fer_utils.registry import NO_DETECTOR, PAGE_MODEL_FILE, PAGE_MODEL_INFO, PAGE_TFLITE_MODES, TFLITE_MODES
from fer_utils.storage.atomic import atomic_files, atomic_folder, temporary_owner
from fer_utils.storage.run_files import METRICS_FILE

if TYPE_CHECKING:
    from fer_utils.train.runs import LoadedRun, RunFolder

REPRESENTATIVE_FACES = 256  # int8 calibration: this many of the shipped generated faces (DiffusionFER-S)


def representative_dataset(
    images: np.ndarray,
) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's calibration input: a function yielding the images one at a time,
    each as a one-image batch in float32 raw pixels like the training crops."""
    images = np.asarray(images, dtype=np.float32)

    def one_at_a_time() -> Iterator[list[np.ndarray]]:
        for image in images:
            yield [image[None]]

    return one_at_a_time


def quantize_int8(
    converter: tf.lite.TFLiteConverter,
    representative: np.ndarray | None,
) -> None:
    """Set `converter` to full integer: int8 weights and activations, whose ranges it
    measures by running `representative` images through the float model; uint8 input and
    output (raw pixels in)."""
    if representative is None or len(representative) == 0:
        problem = "int8 quantization needs representative images"
        raise InputError(f"{problem} (a few hundred training crops)")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(representative)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8


def quantize_float16(converter: tf.lite.TFLiteConverter) -> None:
    """Set `converter` to store the weights as float16 (half the bytes); the arithmetic
    stays float."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def representative_paths(count: int = REPRESENTATIVE_FACES) -> list[Path]:
    """The files of `count` of the shipped generated faces, spread over every class (sorted, then every k-th)."""
    from fer_utils.assets import diffusionfer_dir

    paths = sorted(p for p in diffusionfer_dir().rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"{diffusionfer_dir()} has no images to calibrate an int8 model with")
    return paths[:: max(1, len(paths) // count)][:count]


def representative_faces(height: int, width: int, count: int = REPRESENTATIVE_FACES) -> np.ndarray:
    """int8 calibration: `count` shipped faces cut as `preprocess --detector none` does, raw gray (N, H, W, 1)."""
    if height != width:
        raise InputError(f"face crops are square: int8 calibration cannot make {height}×{width} crops")
    spec, whole = CropSpec(detector=NO_DETECTOR, side=height), make_detector(NO_DETECTOR)
    images = [largest_face_crop(read_image(path), whole, spec).crop for path in representative_paths(count)]
    return np.stack(images).astype(np.float32)[..., None]


@contextmanager
def runtime_logs_held() -> Iterator[None]:
    """Keep the converter's and runtime's C++ logs (fd 2: %%capture misses them) and Keras's export log (printed: "Saved
    artifact at ...") off a page and a terminal, unless the block fails."""
    logger = tf.get_logger()
    level = logger.level
    sys.stderr.flush()
    saved = os.dup(2)
    printed = io.StringIO()
    with tempfile.TemporaryFile() as held, redirect_stdout(printed):
        os.dup2(held.fileno(), 2)
        logger.setLevel("ERROR")
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(printed.getvalue() + held.read().decode(errors="replace"))
            raise
        finally:
            logger.setLevel(level)
            os.dup2(saved, 2)
            os.close(saved)


def to_tflite(
    model: keras.Model,
    mode: str = "float32",
    representative: np.ndarray | None = None,
) -> bytes:
    """The model as a TFLite flatbuffer; `int8` needs `representative` raw-pixel images
    (N, H, W, 1)."""
    if mode not in TFLITE_MODES:
        raise InputError(f"unknown TFLite mode {mode!r}; choose one of {TFLITE_MODES}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float16":
        quantize_float16(converter)
    elif mode == "int8":
        quantize_int8(converter, representative)
    with runtime_logs_held():  # the converter's absl and Python logs
        return converter.convert()


# Where `python -m fer_utils export` writes the live page's model and sidecar (fer_utils.registry names them).
PAGE_FOLDER = "page"


def tensor_quantization(detail: dict) -> list[float] | None:
    """[scale, zero point] of a quantized TFLite tensor (the page (de)quantizes with it), None for a float one."""
    scale, zero = detail["quantization"]
    return [float(scale), int(zero)] if scale else None


def page_tensors(blob: bytes, mode: str) -> dict[str, object]:
    """What the page's model.json says of a TFLite file: its mode and its tensors' [scale, zero point]."""
    interpreter = tflite_interpreter(blob)
    return {
        "tflite": mode,
        "input_quantization": tensor_quantization(interpreter.get_input_details()[0]),
        "output_quantization": tensor_quantization(interpreter.get_output_details()[0]),
    }


def export_page_info(model_file: Path) -> dict | None:
    """The `model.json` beside an export's page model `model_file` (to rewrite), else None; InputError if unreadable."""
    info_path = Path(model_file).parent / PAGE_MODEL_INFO
    if Path(model_file).name != PAGE_MODEL_FILE or not info_path.is_file():
        return None
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{info_path} cannot be read ({exc}): it would no longer describe {model_file}") from None
    if not isinstance(info, dict):
        raise InputError(f"{info_path} is not a JSON object: it would no longer describe {model_file}")
    return info


def tflite_interpreter(model_bytes: bytes, num_threads: int | None = None) -> Interpreter:
    """LiteRT's interpreter for `model_bytes`, its tensors allocated and its delegate's log held back."""
    with runtime_logs_held():
        interpreter = Interpreter(model_content=model_bytes, num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


def _set_input(interpreter: Interpreter, x: np.ndarray) -> dict:
    """Set the interpreter's input to the float images `x` (quantized if the tensor is); the output's details."""
    inp = interpreter.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        interpreter.resize_tensor_input(inp["index"], x.shape)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
    (scale, zero), dtype = inp["quantization"], inp["dtype"]
    if scale:
        info = np.iinfo(dtype)
        x = np.clip(np.round(x / scale + zero), info.min, info.max)
    interpreter.set_tensor(inp["index"], x.astype(dtype))
    return interpreter.get_output_details()[0]


def tflite_predict(model_bytes: bytes | Interpreter, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities for raw-pixel `images` (N, H, W, 1) from a TFLite model's bytes or interpreter."""
    interpreter = tflite_interpreter(model_bytes) if isinstance(model_bytes, (bytes, bytearray)) else model_bytes
    out = interpreter.get_output_details()[0]
    images = np.asarray(images, dtype=np.float32)
    results = []
    for start in range(0, len(images), batch_size):
        out = _set_input(interpreter, images[start : start + batch_size])
        interpreter.invoke()
        scale, zero = out["quantization"]  # the output tensor's, to float32 probabilities
        probabilities = interpreter.get_tensor(out["index"]).astype(np.float32)
        results.append((probabilities - zero) * scale if scale else probabilities)
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
    _set_input(interpreter, np.asarray(batch, np.float32))
    return median_seconds(interpreter.invoke, repeats)


def compiled_predictor(
    model: keras.Model,
    xla: bool = True,
) -> Callable[[np.ndarray], np.ndarray]:
    """The model's inference pass (`training=False`) as a TensorFlow graph function,
    compiled by XLA when `xla` (`tf.function(jit_compile=True)`), else a plain
    `tf.function`. It returns NumPy probabilities; its first call on a new input shape
    traces (and compiles) the function, later ones reuse it."""
    function = tf.function(
        lambda images: model(images, training=False),
        jit_compile=xla,
        reduce_retracing=True,
    )
    return lambda images: function(tf.convert_to_tensor(images, tf.float32)).numpy()


def inference_paths(
    model: keras.Model,
    blobs: dict[str, bytes],
    threads: int | None = None,
    compiler: Callable[..., Callable[[np.ndarray], np.ndarray]] = compiled_predictor,
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Every way the book runs `model`, by name: eager, `compiler` without and with XLA, and LiteRT per blob."""
    paths: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "eager": lambda images: model(images, training=False).numpy(),
        "tf.function": compiler(model, xla=False),
        "xla": compiler(model, xla=True),
    }
    for mode, blob in blobs.items():
        interpreter = tflite_interpreter(blob, num_threads=threads)
        paths[f"tflite {mode}"] = lambda images, it=interpreter: tflite_predict(it, images, batch_size=len(images))
    return paths


def latency_table(
    paths: dict[str, Callable[[np.ndarray], np.ndarray]],
    images: np.ndarray,
    batches: tuple[int, ...] = (1, 32),
    repeats: int = 20,
) -> pd.DataFrame:
    """Per path and batch size: median ms per frame, the first call's seconds and the max diff from the first path."""
    images = np.asarray(images, dtype=np.float32)
    if len(images) == 0:
        raise InputError("latency_table needs at least one image")
    rows = []
    for batch in batches:
        x = np.resize(images, (batch, *images.shape[1:]))
        reference = None
        for name, predict in paths.items():
            start = time.perf_counter()
            output = predict(x)
            first = time.perf_counter() - start
            reference = output if reference is None else reference
            seconds = median_seconds(lambda p=predict, x=x: p(x), repeats, warmup=2)
            rows.append((name, batch, 1000 * seconds / batch, first, float(np.abs(output - reference).max())))
    return pd.DataFrame(rows, columns=["path", "batch", "ms per frame", "first call s", "max diff"])


def deployment_table(
    model: keras.Model,
    blobs: dict[str, bytes],
    test_images: np.ndarray,
    test_labels: np.ndarray,
    folder: Path,
    repeats: int = 30,
) -> pd.DataFrame:
    """Size, batch-1 latency and accuracy of the Keras model and each TFLite flatbuffer of `blobs` (mode → bytes)."""
    one = np.asarray(test_images[:1], np.float32)
    keras_acc = float(np.mean(model.predict(test_images, verbose=0).argmax(1) == test_labels))
    saved = Path(folder) / f"{model.name}.keras"
    model.save(saved)
    rows = [("keras float32", saved.stat().st_size, 1000 * keras_latency(model, one, repeats), keras_acc)]
    for mode, blob in blobs.items():
        accuracy = float(np.mean(tflite_predict(blob, test_images).argmax(1) == test_labels))
        rows.append((f"tflite {mode}", len(blob), 1000 * tflite_latency(blob, one, repeats), accuracy))
    table = pd.DataFrame(rows, columns=["variant", "bytes", "latency_ms", "accuracy"])
    table["speedup"] = table["latency_ms"].iloc[0] / table["latency_ms"]
    table["accuracy_change"] = table["accuracy"] - keras_acc
    return table


def _prunable(layer: keras.layers.Layer) -> bool:
    """Conv2D and Dense kernels are pruned (they hold almost all weights); biases are kept."""
    return isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))


def prune_magnitude(model: keras.Model, sparsity: float) -> keras.Model:
    """A copy of `model` with the smallest `sparsity` fraction of each Conv2D/Dense kernel set to 0."""
    if not 0.0 <= sparsity < 1.0:
        raise InputError(f"sparsity must be in [0, 1), got {sparsity}")
    pruned = keras.models.clone_model(model)
    pruned.set_weights(model.get_weights())
    for layer in filter(_prunable, pruned.layers):
        kernel = np.array(layer.kernel.numpy()).ravel()  # a copy; the smallest magnitudes first, ties in stored order
        kernel[np.argsort(np.abs(kernel), kind="stable")[: round(sparsity * kernel.size)]] = 0.0
        layer.kernel.assign(kernel.reshape(layer.kernel.shape))
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


EXPORT_FILE = "export.json"  # in an export's folder: the run (model folder) its files were exported from


def source_of(folder: Path) -> str | None:
    """The run an earlier export into `folder` came from (its `export.json`), or None when there is none."""
    try:
        record = json.loads((Path(folder) / EXPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = record.get("run") if isinstance(record, dict) else None
    return source if isinstance(source, str) else None


def run_id(run: Path) -> str:
    """How an export names its run: the model folder's absolute, resolved path."""
    return str(Path(run).resolve())


def check_export_folder(folder: Path, run: Path, option: str = "--out") -> None:
    """OutputError unless `folder` is new, empty or an earlier export of `run` (its classes would replace others')."""
    folder = Path(folder)
    entries = [p for p in folder.iterdir() if temporary_owner(p) is None] if folder.is_dir() else []
    if not entries:  # a new or empty folder: nothing to read
        return
    source = source_of(folder)
    if source == run_id(run):
        return
    if source is not None:
        raise OutputError(
            f"{option} {folder} holds the export of another run ({source}); an export of {run_id(run)} would "
            "replace its classes and crop spec: give a new or empty folder (nothing was written)"
        )
    raise OutputError(
        f"{option} {folder} already holds other files ({', '.join(sorted(p.name for p in entries)[:5])}), such "
        "as another run's: an export writes its classes and crop spec only into a new or empty folder of its own, "
        "or one an earlier export of the same run made (nothing was written)"
    )


def write_export(folder: Path, run: Path, files: Mapping[str, str | bytes], option: str = "--out") -> None:
    """Write `files` (name -> content) and `export.json` into `folder`, all or none; OutputError if it cannot."""
    folder = Path(folder)
    check_export_folder(folder, run, option)
    contents = {**files, EXPORT_FILE: json.dumps({"run": run_id(run)})}
    contents = {name: data.encode() if isinstance(data, str) else data for name, data in contents.items()}
    try:
        if folder.is_dir() and any(temporary_owner(p) is None for p in folder.iterdir()):
            with atomic_files([folder / name for name in contents]) as temporaries:
                for tmp, data in zip(temporaries, contents.values()):
                    tmp.write_bytes(data)
        else:
            if folder.is_dir():
                folder.rmdir()
            with atomic_folder(folder) as staging:
                for name, data in contents.items():
                    (staging / name).write_bytes(data)
    except OSError as exc:
        raise OutputError(f"could not write {option} {folder}: {exc.strerror or exc} (nothing was replaced)") from exc


def run_accuracy(run: RunFolder) -> tuple[float | None, str | None]:
    """(the run's test accuracy from its metrics.json, None), or (None, why it is left out)."""
    try:
        accuracy = run.metrics()["test"]["frame"]["accuracy"]
    except FileNotFoundError:
        return None, f"no {METRICS_FILE} in {run.path}: the export leaves the accuracy out"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = "not readable JSON" if isinstance(exc, ValueError) else f"no test accuracy ({type(exc).__name__})"
        return None, f"{run.metrics_file} is damaged ({problem}): the export leaves the accuracy out"
    if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool):
        return None, f"{run.metrics_file} holds no numeric test accuracy: the export leaves the accuracy out"
    return float(accuracy), None


def page_export(run: LoadedRun, mode: str, info: Mapping[str, object]) -> tuple[bytes, dict[str, object]]:
    """The live page's .tflite of a run (a batch of one crop: LiteRT.js runs fixed shapes) and its `model.json`
    (the run's TTA, `info`, classes, served crop spec, input shape, `page_tensors`); InputError if the page cannot
    run it."""
    from fer_utils.models.networks import fixed_input

    model, side = run.model, run.spec.side
    if mode not in PAGE_TFLITE_MODES:
        raise InputError(f"{run.folder}: the page runs {' or '.join(PAGE_TFLITE_MODES)} models, not {mode!r}")
    if len(model.input_shape) != 4 or int(model.input_shape[-1]) != 1:
        raise InputError(f"{run.folder}: the page feeds gray crops (H, W, 1); this model takes {model.input_shape[1:]}")
    representative = representative_faces(side, side) if mode == "int8" else None
    blob = to_tflite(fixed_input(model, side, batch_size=1), mode, representative)
    served = {"classes": list(run.classes), "crop": served_spec(run.spec).to_dict(), "input_shape": [side, side, 1]}
    return blob, {"tta": run.tta, **info, **served, **page_tensors(blob, mode)}  # served as its run serves it
