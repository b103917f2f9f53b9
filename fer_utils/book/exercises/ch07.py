"""The checkers of chapter 7, the comparison: each computes the expected answer from the real data it is given."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fer_utils.book.exercises.feedback import Feedback, as_number, check_number, coding_exercise, run_student


def check_param_ratio(answer: object, big: int, small: int) -> Feedback:
    """How many times more parameters `big` has than `small`."""
    return check_number(answer, big / small, "the parameter ratio", 2e-2)


def _flop_hint(layer: object, got: float, expected: int) -> str:
    """The likely mistake behind a layer's wrong FLOP count, from the ratio of the two."""
    import keras

    out = [int(d) for d in layer.output.shape[1:]]
    positions = int(np.prod(out[:-1] or [1]))
    inp = [int(d) for d in layer.input.shape[1:]]
    if got == 0:
        return "you return 0 for it, but it multiplies and adds."
    if math.isclose(got, expected / 2, rel_tol=1e-9):
        return "you forgot the factor 2 (multiply + add)."
    if math.isclose(got, 2 * expected, rel_tol=1e-9):
        return "you doubled twice: 2 × multiply–accumulates is already the FLOP count."
    if positions > 1 and math.isclose(got * positions, expected, rel_tol=1e-9):
        return f"you counted one output position: multiply by H_out × W_out = {out[0]} × {out[1]}."
    if (
        len(inp) == 3
        and inp[:2] != out[:2]
        and math.isclose(got * out[0] * out[1], expected * inp[0] * inp[1], rel_tol=1e-9)
    ):
        return (
            f"you used the input's size {inp[0]}×{inp[1]}, but the layer has stride {layer.strides[0]}: "
            f"count the output positions, {out[0]}×{out[1]}."
        )
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise = 2 * positions * int(np.prod(layer.depthwise_kernel.shape))
        pointwise = 2 * positions * int(np.prod(layer.pointwise_kernel.shape))
        if math.isclose(got, depthwise, rel_tol=1e-9):
            return "you counted only its depthwise 3×3 part: add the 1×1 pointwise convolution."
        if math.isclose(got, pointwise, rel_tol=1e-9):
            return "you counted only its 1×1 pointwise part: add the depthwise 3×3 convolution."
    if isinstance(layer, keras.layers.DepthwiseConv2D) and math.isclose(got, expected * out[-1], rel_tol=1e-9):
        return "a depthwise convolution has one 3×3 filter per channel: it does not mix the channels."
    return f"yours is {got / expected:.4g} times that."


@coding_exercise
def check_conv_flops(conv_flops: Callable[[object], object], models: dict[str, object]) -> Feedback:
    """`conv_flops(layer)` must give 2 × `models.networks.layer_macs(layer)` for every layer of every model in `models`
    (0 for the layers we do not count) but the input, a crop of any side, which has nothing to count; the first
    layer that differs is named, with the likely mistake."""
    import keras

    from fer_utils.models.networks import layer_macs

    counted = 0
    for name, model in models.items():
        for layer in model.layers:
            if isinstance(layer, (keras.layers.InputLayer, keras.layers.TimeDistributed, keras.layers.RNN)):
                continue  # nothing to count, or a whole model / an LSTM: the exercise's rule covers kernels only
            expected = 2 * layer_macs(layer)
            try:
                got = run_student(conv_flops, layer)
            except NotImplementedError:  # the stub: unanswered, not a failure on this layer
                raise
            except Exception as exc:  # name the layer it failed on
                return Feedback(
                    False,
                    f"`{conv_flops.__name__}` raised {type(exc).__name__} on {name}'s layer "
                    f"{layer.name} ({type(layer).__name__}): {exc}",
                )
            value = as_number(got)
            if value is None:
                return Feedback(
                    False, f"{name}'s layer {layer.name}: `{conv_flops.__name__}` returned {got!r}, not a number."
                )
            if value == expected:
                counted += expected > 0
                continue
            where = f"{name}'s layer {layer.name} ({type(layer).__name__}, output {tuple(layer.output.shape[1:])})"
            if expected == 0:
                return Feedback(
                    False,
                    f"{where}: you return {value:,.0f}, but we count only the multiply–accumulates "
                    "of Conv2D, DepthwiseConv2D, SeparableConv2D and Dense layers: return 0 for it.",
                )
            return Feedback(
                False,
                f"{where}: you return {value:,.0f} FLOPs, 2 × layer_macs gives {expected:,}: "
                + _flop_hint(layer, value, expected),
            )
    return Feedback(
        True,
        f"your count agrees with `layer_macs` on all {counted} convolution and dense layers of "
        f"{', '.join(models)}: FLOPs = 2 × output positions × weights of the kernel(s).",
    )
