"""The checkers of chapter 3, the architecture: each computes the expected answer from the real data it is given."""

from __future__ import annotations

import math
from collections.abc import Callable

from fer_utils.book.exercises.feedback import Feedback, check_number, coding_exercise, run_student


def check_conv_params(answer: object, kernel: int, in_channels: int, filters: int) -> Feedback:
    """Parameters of a Conv2D layer: (kernel × kernel × in_channels + 1 bias) × filters."""
    expected = (kernel * kernel * in_channels + 1) * filters
    return check_number(
        answer, expected, f"the parameters of a {kernel}×{kernel} conv, {in_channels} → {filters} channels", 0
    )


def check_dense_params(answer: object, inputs: int, units: int) -> Feedback:
    """Parameters of a Dense layer: (inputs + 1 bias) × units."""
    return check_number(answer, (inputs + 1) * units, f"the parameters of a Dense({units}) on {inputs} inputs", 0)


def _layer_hint(got: object, expected: object, stage: str) -> str:
    """Why a student's layer differs from the paper's one at the same position (shape or parameters)."""
    got_shape, expected_shape = tuple(got.output.shape[1:]), tuple(expected.output.shape[1:])  # type: ignore[attr-defined]
    kind = type(expected).__name__
    if got_shape != expected_shape:
        if kind == "Conv2D" and got_shape[:2] != expected_shape[:2]:
            cause = f"check the padding of {stage} ('same' keeps the map's size)"
        elif kind == "Conv2D" or kind == "Dense":
            cause = f"check the number of {'filters' if kind == 'Conv2D' else 'units'} of {stage}"
        else:
            cause = f"check the pool size of {stage}"
        return f"{stage} outputs {got_shape} where the paper's outputs {expected_shape}: {cause}"
    return (
        f"{stage} has {got.count_params():,} parameters where the paper's has "  # type: ignore[attr-defined]
        f"{expected.count_params():,}: check its kernel size (3×3)"
    )


@coding_exercise
def check_sequential_cnn(build: Callable[..., object]) -> Feedback:
    """`build(num_classes, input_shape)` returns the paper's CNN as a `keras.Sequential`: the same layers
    as `build_paper_cnn`, in the same order, with the same output shapes, parameters and activations
    (its input and the resizer that takes crops of any side are not the paper's layers: a Sequential
    that starts at `input_shape` needs neither). Checked at the paper's 180×180×1 with 8 classes, and at
    48×48×1 with 7 classes."""
    import keras

    not_the_papers = (keras.layers.InputLayer, keras.layers.Resizing)

    from fer_utils.models.networks import build_paper_cnn

    for num_classes, shape in ((8, (180, 180, 1)), (7, (48, 48, 1))):
        model = run_student(build, num_classes, shape)
        if type(model) is not keras.Sequential:
            return Feedback(False, f"`{build.__name__}` returned a {type(model).__name__}, not a keras.Sequential.")
        if not model.inputs:
            return Feedback(
                False, "your model has no input shape yet: start the list with keras.Input(shape=input_shape)."
            )
        paper = build_paper_cnn(num_classes, shape)
        got_types = [
            type(layer).__name__ if type(layer).__module__.startswith("keras.") else f"your own {type(layer).__name__}"
            for layer in model.layers
        ]
        layers = [layer for layer in paper.layers if not isinstance(layer, not_the_papers)]
        expected_types = [type(layer).__name__ for layer in layers]
        total, expected_total = model.count_params(), paper.count_params()
        head = (
            f"at {shape[0]}×{shape[1]} with {num_classes} classes your network has {total:,} parameters, "
            f"the paper's has {expected_total:,}"
        )
        if got_types != expected_types:
            at = next(
                (i for i, (g, e) in enumerate(zip(got_types, expected_types)) if g != e),
                min(len(got_types), len(expected_types)),
            )
            found = got_types[at] if at < len(got_types) else "nothing"
            needed = expected_types[at] if at < len(expected_types) else "nothing"
            return Feedback(
                False,
                f"{head}. Its layer {at + 1} is {found} where the paper's is {needed} "
                f"(the paper's layers: {', '.join(expected_types)}).",
            )
        for got, expected in zip(model.layers, layers):
            different = (
                tuple(got.output.shape[1:]) != tuple(expected.output.shape[1:])
                or got.count_params() != expected.count_params()
            )
            if different:
                return Feedback(False, f"{head}: {_layer_hint(got, expected, expected.name)}.")
            activation = getattr(expected, "activation", None)
            if activation is not None and got.activation.__name__ != activation.__name__:
                return Feedback(
                    False, f"{expected.name} uses {got.activation.__name__}, the paper's {activation.__name__}."
                )
        rescale = model.layers[0]
        if not math.isclose(float(rescale.scale), 1 / 255):
            return Feedback(
                False, f"the Rescaling layer multiplies by {rescale.scale}: the pixels are 0–255, use 1/255."
            )
    return Feedback(
        True,
        f"your Sequential network has the paper's layers, shapes and {paper.count_params():,} "
        f"parameters at 48×48 (7 classes), and {build_paper_cnn().count_params():,} at 180×180 (8 classes).",
    )
