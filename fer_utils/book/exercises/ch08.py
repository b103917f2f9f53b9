"""The checkers of chapter 8, deployment: each computes the expected answer from the real data it is given."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable

import numpy as np

from fer_utils.book.exercises.feedback import Feedback, coding_exercise, run_student

INT8_MAX_MEAN_CHANGE = 0.03  # mean |Δ probability| allowed between an int8 model and its Keras original


def _int8_model_problem(interpreter: object) -> str | None:
    """What keeps a TFLite model from being full-integer int8 with int8 input and output (None: nothing)."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    inner = [d for d in interpreter.get_tensor_details() if d["index"] not in (inp["index"], out["index"])]
    kinds = {np.dtype(d["dtype"]).name for d in inner}
    if "int8" not in kinds:
        stored = "float16" if "float16" in kinds else "float32"
        return (
            f"your model's weights are {stored}: did you set converter.optimizations = [tf.lite.Optimize.DEFAULT] "
            "(and leave out target_spec.supported_types = [tf.float16])?"
        )
    if "float32" in kinds:
        return (
            "no representative dataset: the weights are int8 but the activations are not int8 (they stay float32); "
            "set converter.representative_dataset to a function that yields training crops"
        )
    for side, detail in (("input", inp), ("output", out)):
        kind = np.dtype(detail["dtype"]).name
        if kind != "int8":
            return (
                f"your model's {side} is {kind}: this exercise asks for signed int8 in and out "
                f"(converter.inference_{side}_type = tf.int8)"
            )
    return None


@coding_exercise
def check_int8_model(
    to_int8: Callable[..., object], model: object, representative: object, crops: object, float32_bytes: int
) -> Feedback:
    """`to_int8(model, representative)` must return a full-integer TFLite model (int8 weights and
    activations, int8 input and output) whose probabilities on the test `crops` stay close to Keras's."""
    from fer_utils.deploy.tflite import runtime_logs_held, tflite_interpreter, tflite_predict

    with (  # the converter's C++ log, TensorFlow's logger, prints and warnings stay out of the exercise's output
        runtime_logs_held(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        blob = run_student(to_int8, model, representative)
    if not isinstance(blob, (bytes, bytearray)):
        return Feedback(
            False,
            f"`{to_int8.__name__}` returned a {type(blob).__name__}; return what converter.convert() gives (bytes).",
        )
    interpreter = tflite_interpreter(bytes(blob))
    problem = _int8_model_problem(interpreter)
    if problem:
        return Feedback(False, problem)
    images = np.asarray(crops, np.float32)
    expected = np.asarray(model.predict(images, verbose=0))
    got = tflite_predict(interpreter, images)
    change = float(np.abs(got - expected).mean())
    agree = float(np.mean(got.argmax(1) == expected.argmax(1)))
    if change > INT8_MAX_MEAN_CHANGE:
        return Feedback(
            False,
            f"your int8 model's probabilities differ from the Keras model's by {change:.3f} on average "
            f"(it agrees on the top class for {agree:.0%} of the {len(images)} crops): calibrate on crops in raw "
            "pixels 0–255, as the model sees them (not divided by 255), one float32 batch of one at a time",
        )
    return Feedback(
        True,
        f"a full-integer int8 model of {len(blob) / 1024:.0f} kB, {float32_bytes / len(blob):.1f}× smaller than "
        f"the float32 one ({float32_bytes / 1024:.0f} kB); on {len(images)} test crops it picks the Keras model's "
        f"class {agree:.0%} of the time, probabilities within {change:.3f} on average.",
    )


def _occlusion_drops(model: object, image: object, class_index: int, patch: int, fill: float | None = None) -> object:
    """How much p(class_index) drops as each patch×patch square of `image` is covered with `fill` (or its mean)."""
    image = np.asarray(image, np.float32)
    image = image.reshape((image.shape[0], image.shape[1], model.input_shape[-1]))
    rows, cols = image.shape[0] // patch, image.shape[1] // patch
    value = float(image.mean()) if fill is None else fill
    covered = np.repeat(image[None], rows * cols, axis=0)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        covered[k, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = value
    probabilities = np.asarray(model.predict(np.concatenate([image[None], covered]), verbose=0))[:, class_index]
    return (probabilities[0] - probabilities[1:]).reshape(rows, cols)


@coding_exercise
def check_occlusion_map(
    occlusion_map: Callable[..., object], model: object, image: object, class_index: int, patch: int = 8
) -> Feedback:
    """`occlusion_map(model, image, class_index, patch)`: the drop of the class probability when each
    square is covered with the image's mean gray; compared with the drops computed here, and with Grad-CAM."""
    from fer_utils.evaluate.explain import grad_cam

    answer = np.asarray(run_student(occlusion_map, model, image, class_index, patch), dtype=np.float64)
    expected = _occlusion_drops(model, image, class_index, patch)
    height, width = np.shape(image)[:2]
    if answer.shape != expected.shape:
        return Feedback(
            False,
            f"your map is {answer.shape}; with {patch}×{patch} squares on a {height}×{width} face it must be "
            f"{expected.shape} (one value per square, rows first)",
        )
    if np.allclose(answer, expected, atol=1e-4):
        r, c = np.unravel_index(expected.argmax(), expected.shape)
        cam = grad_cam(model, image, class_index)
        cam_r, cam_c = np.unravel_index(cam.argmax(), cam.shape)
        return Feedback(
            True,
            f"covering square (row {r}, column {c}) lowers the probability most, by {expected[r, c]:.3f}; "
            f"Grad-CAM's peak lies in square (row {cam_r // patch}, column {cam_c // patch}).",
        )
    if np.allclose(answer, -expected, atol=1e-4):
        return Feedback(
            False,
            "your map has the wrong sign: the drop is p(original) − p(covered), positive where the square mattered",
        )
    if np.allclose(answer, _occlusion_drops(model, image, class_index, patch, fill=0.0), atol=1e-4):
        return Feedback(
            False,
            "you covered the squares with black (0): use the image's mean gray, so that the cover adds no dark blob of its own",
        )
    r, c = np.unravel_index(np.abs(answer - expected).argmax(), expected.shape)
    return Feedback(
        False,
        f"square (row {r}, column {c}) should drop by {expected[r, c]:.4f}, yours says {answer[r, c]:.4f}: "
        f"cover rows {r * patch}–{(r + 1) * patch - 1} and columns {c * patch}–{(c + 1) * patch - 1} only",
    )
