"""The checkers of chapter 3, the architecture: each computes the expected answer from the real data it is given."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from fer_utils.book.exercises.feedback import Feedback, as_number, coding_exercise, run_student


class _Count(NamedTuple):
    """A real Keras layer to check a counting function on: what it is, the function's arguments, Keras's count."""

    where: str
    args: tuple[int, ...]
    expected: int


def _check_counts(
    function: Callable[..., object],
    counts: list[_Count],
    mistakes: list[tuple[str, Callable[..., float]]],
    explain: Callable[[_Count], str],
) -> Feedback | None:
    """None when `function` gives Keras's counts, else feedback on the first that differs, with the likely mistake."""

    def call(count: _Count) -> str:
        return f"`{function.__name__}({', '.join(map(str, count.args))})`"

    answers = []
    for count in counts:
        try:
            got = run_student(function, *count.args)
        except NotImplementedError:  # the stub: unanswered, not a failure on this count
            raise
        except Exception as exc:  # name the layer it failed on
            return Feedback(False, f"{call(count)} raised {type(exc).__name__} on {count.where}: {exc}")
        value = as_number(got)
        if value is None:
            return Feedback(False, f"{count.where}: {call(count)} returned {got!r}, not a number.")
        answers.append(value)
    wrong = [(count, value) for count, value in zip(counts, answers) if value != count.expected]
    if not wrong:
        return None
    count, value = wrong[0]

    def gives(formula: Callable[..., float], count: _Count, value: float) -> bool:
        return math.isclose(value, formula(*count.args), rel_tol=1e-9)

    every = (hint for hint, formula in mistakes if all(gives(formula, c, v) for c, v in zip(counts, answers)))
    this = (f"perhaps {hint}" for hint, formula in mistakes if gives(formula, count, value))
    hint = next(every, None) or next(this, None) or f"yours is {value / count.expected:.4g} times that."
    shown = f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return Feedback(
        False,
        f"{count.where}: {call(count)} returns {shown}, Keras counts {count.expected:,} ({explain(count)}): {hint}",
    )


@coding_exercise
def check_conv_params(conv_params: Callable[[int, int, int], object]) -> Feedback:
    """`conv_params(kernel, in_channels, filters)` must give the parameters Keras counts for a Conv2D layer with
    kernel×kernel kernels from in_channels to filters channels, (kernel² × in_channels + 1) × filters, on real
    layers: the three of `build_paper_cnn` and four others (5×5 on RGB, a stride of 2, 1×1, 7×7); the first layer
    that differs is named, with the likely mistake."""
    import keras
    from keras import layers

    from fer_utils.models.networks import build_paper_cnn

    others = keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3)),
            layers.Conv2D(32, 5, name="rgb_5x5"),
            layers.Conv2D(24, 3, strides=2, name="strided_3x3"),
            layers.Conv2D(128, 1, name="pointwise_1x1"),
            layers.Conv2D(8, 7, padding="same", name="wide_7x7"),
        ],
        name="other_convs",
    )
    counts = [
        _Count(
            f"{model.name}'s {layer.name}",
            (layer.kernel_size[0], int(layer.input.shape[-1]), layer.filters),
            layer.count_params(),
        )
        for model in (build_paper_cnn(), others)
        for layer in model.layers
        if isinstance(layer, layers.Conv2D)
    ]
    mistakes = [
        ("you forgot the bias: each filter adds one (the + 1).", lambda k, c, f: k * k * c * f),
        (
            "you left out the input channels: a filter has one k×k kernel for each input channel.",
            lambda k, c, f: (k * k + 1) * f,
        ),
        ("the kernel is k × k: square the kernel size.", lambda k, c, f: (k * c + 1) * f),
        ("you counted a bias for every weight: a filter has one bias.", lambda k, c, f: 2 * k * k * c * f),
        (
            "you counted a bias for every kernel entry: a filter has one bias, whatever its size.",
            lambda k, c, f: k * k * (c + 1) * f,
        ),
        (
            "you counted a bias for every input channel: a filter has one bias, shared by its channels.",
            lambda k, c, f: (k * k + 1) * c * f,
        ),
        ("you counted one bias for the whole layer: each filter has its own.", lambda k, c, f: k * k * c * f + 1),
        (
            "you swapped in_channels and filters: the bias belongs to each filter (the output channels).",
            lambda k, c, f: (k * k * f + 1) * c,
        ),
    ]
    wrong = _check_counts(
        conv_params, counts, mistakes, lambda count: "kernel {0}×{0}, {1} → {2} channels".format(*count.args)
    )
    if wrong is not None:  # a Feedback is falsy when it fails: not `wrong or …`
        return wrong
    return Feedback(
        True,
        f"your count agrees with Keras on all {len(counts)} Conv2D layers: (k² × c_in + 1) × c_out, whatever the "
        "stride or the size of the map (a filter is applied everywhere with the same weights).",
    )


def _pooled(side: float, times: int = 3, rounding: Callable[[float], float] = math.floor) -> float:
    """`side` after `times` 2×2 poolings, each side halved and rounded by `rounding`."""
    for _ in range(times):
        side = rounding(side / 2)
    return side


@coding_exercise
def check_fc_params(fc_params: Callable[[int, int, int], object]) -> Feedback:
    """`fc_params(side, filters, units)` must give the parameters Keras counts for the dense layer fc of the
    paper's stack on a side×side input, (H × W × filters + 1) × units with H = W the side after three 2×2
    poolings (each rounding down), on real models: `build_paper_cnn` at 180, 48 and 100 pixels, and the same stack
    with other filters and units at 90 and 57; the first that differs is named, with the likely mistake."""
    from fer_utils.models.networks import build_paper_cnn

    cases = [(180, 64, 16), (48, 64, 16), (100, 64, 16), (90, 32, 32), (57, 8, 10)]
    counts = []
    for side, filters, units in cases:
        model = build_paper_cnn(8, (side, side, 1), filters=(16, filters, filters), units=units)
        where = (
            f"the paper's network at {side}×{side}"
            if (filters, units) == (64, 16)
            else f"the stack at {side}×{side} with {filters} filters in conv3 and {units} units in fc"
        )
        counts.append(_Count(where, (side, filters, units), model.get_layer("fc").count_params()))

    def dense(inputs: float, units: int) -> float:
        return (inputs + 1) * units

    mistakes = [
        ("you forgot the bias: each unit adds one (the + 1).", lambda s, f, u: _pooled(s) ** 2 * f * u),
        (
            "you left out the channels: the flattened map is H × W × filters values.",
            lambda s, f, u: dense(_pooled(s) ** 2, u),
        ),
        ("the map is H × W: square its side.", lambda s, f, u: dense(_pooled(s) * f, u)),
        (
            "you divided by 8 without rounding: each 2×2 pooling drops an odd last row and column (//, not /).",
            lambda s, f, u: dense((s / 8) ** 2 * f, u),
        ),
        (
            "you rounded up: a 2×2 pooling without padding drops an odd last row and column, "
            "H_out = ⌊(H_in - 2) / 2⌋ + 1.",
            lambda s, f, u: dense(_pooled(s, rounding=math.ceil) ** 2 * f, u),
        ),
        (
            "you flattened the input's side: conv1–conv3 keep it ('same'), but each of the three poolings halves it.",
            lambda s, f, u: dense(s * s * f, u),
        ),
        *[
            (
                f"you halved the side {said}: there are three poolings, each halves it.",
                lambda s, f, u, times=times: dense(_pooled(s, times) ** 2 * f, u),
            )
            for times, said in ((1, "once"), (2, "twice"), (4, "four times"))
        ],
        ("you used the side 22 of a 180-pixel input: work it out from `side`.", lambda s, f, u: dense(22 * 22 * f, u)),
        ("you used the paper's 64 filters: use `filters`.", lambda s, f, u: dense(_pooled(s) ** 2 * 64, u)),
        ("you used the paper's 16 units: use `units`.", lambda s, f, u: dense(_pooled(s) ** 2 * f, 16)),
        ("you counted a bias for every weight: a unit has one bias.", lambda s, f, u: 2 * _pooled(s) ** 2 * f * u),
    ]

    def explain(count: _Count) -> str:
        side, filters, _ = count.args
        out = _pooled(side)
        return f"fc reads a flattened {out}×{out}×{filters} map, {out * out * filters:,} values"

    wrong = _check_counts(fc_params, counts, mistakes, explain)
    if wrong is not None:  # a Feedback is falsy when it fails: not `wrong or …`
        return wrong
    return Feedback(
        True,
        f"your count agrees with Keras's fc on all {len(counts)} models: the side halves, rounding down, at each "
        f"of the three poolings (180 → 90 → 45 → 22), and fc has (22 × 22 × 64 + 1) × 16 = "
        f"{counts[0].expected:,} parameters in the paper's network.",
    )


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
    """`build(num_classes, input_shape)` returns the paper's CNN as a `keras.Sequential`: the same layers as
    `build_paper_cnn`, in the same order, with the same output shapes, parameters and activations (its input and
    the resizer that takes crops of any side are not the paper's layers: a Sequential that starts at `input_shape`
    needs neither)."""
    import keras

    from fer_utils.models.networks import build_paper_cnn

    not_the_papers = (keras.layers.InputLayer, keras.layers.Resizing)
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
        head = (
            f"at {shape[0]}×{shape[1]} with {num_classes} classes your network has {model.count_params():,} "
            f"parameters, the paper's has {paper.count_params():,}"
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
            if (
                tuple(got.output.shape[1:]) != tuple(expected.output.shape[1:])
                or got.count_params() != expected.count_params()
            ):
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
