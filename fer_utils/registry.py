"""The names and the paper's numbers that the package, the CLI, the notebooks and the tests share.

Each is defined here once, and this module imports nothing, so `--help` never loads TensorFlow, dlib or OpenCV."""

from __future__ import annotations

# The paper (Ding, Tang & Lu 2023): 180×180 gray input, dropout 0.3 between the stages (SAVEE's last two 0.5),
# Adam 1e-3, batch 32, 6 frames per clip, an image-level random 80/20 split.
PAPER_SIDE = 180
# The largest crop or input side accepted: 1024 px is 1 MB of gray; beyond, useless here and filling memory.
MAX_SIDE = 1024
PAPER_IMAGE_SIZE: tuple[int, int] = (PAPER_SIDE, PAPER_SIDE)
PAPER_INPUT_SHAPE: tuple[int, int, int] = (PAPER_SIDE, PAPER_SIDE, 1)
PAPER_CLASSES = 8
PAPER_FILTERS: tuple[int, int, int] = (16, 64, 64)  # conv1, conv2, conv3
PAPER_UNITS = 16  # the dense layer fc
PAPER_DROPOUT: tuple[float, float, float] = (0.3, 0.3, 0.3)
SAVEE_DROPOUT: tuple[float, float, float] = (0.3, 0.5, 0.5)
# The default dropout, only before flatten: with the paper's the dense units often die (benchmarks/README.md).
DEFAULT_DROPOUT: tuple[float, float, float] = (0.0, 0.0, 0.3)
PAPER_LEARNING_RATE = 1e-3
PAPER_BATCH_SIZE = 32
PAPER_FRAMES = 6
PAPER_TEST_SIZE = 0.2
# The paper CNN's parameters (8 classes), and how many times as many its Table I's LSTM has (about 63 million).
PAPER_PARAMS = 542_136
PAPER_LSTM_PARAMS_RATIO = 116.5

# The book's network for faces in the wild (models.build_wild_cnn): FER-2013's 48-px gray faces, 7 classes.
WILD_MODEL = "wild-cnn"
WILD_SIDE = 48
WILD_INPUT_SHAPE: tuple[int, int, int] = (WILD_SIDE, WILD_SIDE, 1)
WILD_WIDTHS: tuple[int, ...] = (24, 48, 96, 192)
WILD_BN_MOMENTUM = 0.9  # models.networks.batch_norm says why, not Keras's 0.99
WILD_OPTIONS: tuple[str, ...] = ("width", "bn_momentum")  # passed like MODEL_OPTIONS; width multiplies WILD_WIDTHS
MIXES: tuple[str, ...] = ("none", "mixup", "cutmix")  # batch mixing: Zhang et al. 2018, Yun et al. 2019

# Test-time augmentation (evaluate.metrics): the crop alone, with its mirror, or those and four TTA_SHIFT-px shifts.
# Accuracy on real FER-2013 / CK+ (../shared/measurements): 0.637 / 0.616, 0.646 / 0.616, 0.649 / 0.632.
TTA_MODES: tuple[str, ...] = ("none", "flip", "flip-shift")
TTA_SHIFT = 2

# The registered models, each with the input and class count it is usually quoted at (the paper's parameter table).
PAPER_MODEL = "paper-cnn"
CANONICAL_INPUTS: dict[str, tuple[tuple[int, ...], int]] = {
    PAPER_MODEL: (PAPER_INPUT_SHAPE, PAPER_CLASSES),
    "alexnet": ((227, 227, 3), 1000),
    "resnet50": ((224, 224, 3), 1000),
    "mobilenet-v2": ((224, 224, 3), 1000),
    "xception": ((299, 299, 3), 1000),
    "mini-xception": ((48, 48, 1), 7),
    WILD_MODEL: (WILD_INPUT_SHAPE, 7),
    "mobilenet-inception": (PAPER_INPUT_SHAPE, PAPER_CLASSES),
    "cnn-lstm": ((PAPER_FRAMES, *PAPER_INPUT_SHAPE), PAPER_CLASSES),  # a clip: the paper's frames per clip
}
MODEL_NAMES: tuple[str, ...] = tuple(CANONICAL_INPUTS)
# Sequence models read SEQUENCE_FRAMES frames of a clip at once: `random` would put a clip's frames on both sides.
SEQUENCE_MODELS: tuple[str, ...] = ("cnn-lstm",)
SEQUENCE_FRAMES = PAPER_FRAMES
MODEL_OPTIONS: tuple[str, ...] = ("dropout", "l1", "init")  # only the paper CNN's builder takes these
# Initialisers of its ReLU layers: Keras's default (presumably the paper's), or He et al. 2015's, scaled for ReLU.
PAPER_INIT = "glorot_uniform"
INITS: tuple[str, ...] = (PAPER_INIT, "he_uniform", "he_normal")
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")  # balanced: each class's loss weighs n / (classes × its count)
# Split protocols (data.splits): `given`, the dataset's own split, is the default where a manifest has one.
PROTOCOLS: tuple[str, ...] = ("random", "clip", "subject", "given")
PAPER_PROTOCOL = "random"
SEQUENCE_PROTOCOLS: tuple[str, ...] = tuple(p for p in PROTOCOLS if p != PAPER_PROTOCOL)  # see SEQUENCE_MODELS
GIVEN_PROTOCOL = "given"
DEFAULT_VAL_SIZE = 0.1

# Face detectors (fer_utils.faces.crops) and the crop (fer_utils.faces.preprocess).
FACE_DETECTORS: tuple[str, ...] = ("dlib-hog", "dlib-cnn", "opencv-haar")  # the ones that look for faces
NO_DETECTOR = "none"  # the image is already a face crop: the box is the whole image
DETECTORS: tuple[str, ...] = (*FACE_DETECTORS, NO_DETECTOR)
DEFAULT_DETECTOR = "dlib-hog"  # the paper's
DEFAULT_MARGIN = 0.1  # around the face box, as a fraction of its side

# Datasets that `download` knows: RAVDESS and CREMA-D are fetched, the others print where to request them.
DOWNLOADABLE_DATASETS: tuple[str, ...] = ("ravdess", "cremad", "savee", "mead")

# Deployment (fer_utils.deploy.tflite) and explanations (fer_utils.evaluate.explain).
TFLITE_MODES: tuple[str, ...] = ("float32", "float16", "int8")
DEFAULT_TFLITE_MODE = "float16"  # quantize's default: half the bytes, no calibration crops needed
# The live page's model and its sidecar, as `export` writes them and the built book serves the book's model.
PAGE_MODEL_FILE = "model.tflite"
PAGE_MODEL_INFO = "model.json"
PAGE_TFLITE_MODES: tuple[str, ...] = ("float32", "int8")  # what LiteRT.js runs on the page
CAM_METHODS: tuple[str, ...] = ("hirescam", "gradcam")
DEFAULT_CAM_METHOD = "hirescam"
