"""The names and the paper's numbers that the package, the CLI, the notebooks and the tests share.

Each is defined here once. This module imports nothing, so the command line can build its choices and
defaults from it and `python -m fer_utils --help` never loads TensorFlow, dlib or OpenCV."""

from __future__ import annotations

# The paper (Ding, Tang & Lu 2023): 180×180 grayscale input, dropout 0.3 between the stages (the
# SAVEE setting raises the last two to 0.5, see fer_utils.models.networks), Adam 1e-3, batch 32, 6 frames per
# clip, an image-level random 80/20 split.
PAPER_SIDE = 180
# The largest crop or input side accepted (command line and crop specs): a 1024×1024 gray crop is 1 MB; beyond
# that crops are unusable for these models (the paper's input is 180 px) and fill memory (100000 px: 10 GB each).
MAX_SIDE = 1024
PAPER_IMAGE_SIZE: tuple[int, int] = (PAPER_SIDE, PAPER_SIDE)
PAPER_INPUT_SHAPE: tuple[int, int, int] = (PAPER_SIDE, PAPER_SIDE, 1)
PAPER_CLASSES = 8
PAPER_DROPOUT: tuple[float, float, float] = (0.3, 0.3, 0.3)
SAVEE_DROPOUT: tuple[float, float, float] = (0.3, 0.5, 0.5)
# The dropout TrainConfig and the builders use instead of PAPER_DROPOUT: only the last, before flatten. With the
# paper's, the dense units often all die and the run stays at chance (benchmarks/README.md, "Training recipe
# across seeds" and "The paper's dropout and learning rate").
DEFAULT_DROPOUT: tuple[float, float, float] = (0.0, 0.0, 0.3)
PAPER_LEARNING_RATE = 1e-3
PAPER_BATCH_SIZE = 32
PAPER_FRAMES = 6
PAPER_TEST_SIZE = 0.2
# The paper's count of its CNN (8 classes), and how many times as many parameters the one comparator of its Table I
# it concedes has: an LSTM on RAVDESS (Ryumina & Karpov 2020; 98.90 %, stated in `book.cited`), about 63 million.
PAPER_PARAMS = 542_136
PAPER_LSTM_PARAMS_RATIO = 116.5

# The book's network for faces in the wild (models.build_wild_cnn): FER-2013's 48-px gray faces and 7 classes,
# four convolution blocks of these widths (benchmarks/README.md, "The book's network for faces in the wild").
WILD_MODEL = "wild-cnn"
WILD_SIDE = 48
WILD_INPUT_SHAPE: tuple[int, int, int] = (WILD_SIDE, WILD_SIDE, 1)
WILD_WIDTHS: tuple[int, ...] = (24, 48, 96, 192)
# Its batch normalisation's momentum (models.networks.batch_norm says why 0.9, not Keras's 0.99).
WILD_BN_MOMENTUM = 0.9
# The wild network's options (TrainConfig's `width`, a multiplier of WILD_WIDTHS, and `bn_momentum`): a builder
# gets those it names (fer_utils.train.fit.model_options), as it gets MODEL_OPTIONS.
WILD_OPTIONS: tuple[str, ...] = ("width", "bn_momentum")
# Mixing of training batches (TrainConfig.mix; train.pipeline.augment_batches): none, mixup (Zhang et al. 2018)
# or cutmix (Yun et al. 2019), each image mixed with another of its batch and its label with it.
MIXES: tuple[str, ...] = ("none", "mixup", "cutmix")

# Test-time augmentation (fer_utils.evaluate.metrics): the views of a crop whose class probabilities are averaged.
# "none": the crop alone; "flip": it and its mirror; "flip-shift": those and four shifts of the crop by TTA_SHIFT
# pixels (up, down, left, right). Measured on real FER-2013 / CK+ (../shared/measurements): 0.637 / 0.616 with
# one view, 0.646 / 0.616 with the mirror, 0.649 / 0.632 with the six views.
TTA_MODES: tuple[str, ...] = ("none", "flip", "flip-shift")
TTA_SHIFT = 2

# Models: the registered names, each with the input and class count it is usually quoted at (for the paper's
# table of parameter counts; a sequence model's input is a clip, (frames, H, W, 1)).
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
# Sequence models (fer_utils.train.sequences): they read SEQUENCE_FRAMES frames of a clip at once (the paper's 6, the
# frames preprocessing cuts), so they train and test on whole clips, under the clip, subject or given protocol
# (`random` draws single frames and would put frames of one clip on both sides).
SEQUENCE_MODELS: tuple[str, ...] = ("cnn-lstm",)
SEQUENCE_FRAMES = PAPER_FRAMES
# The training options only the paper CNN's builder takes (its three dropout rates, the L1 factor on its dense
# layer, the initialiser of its ReLU layers): a builder gets those it names (fer_utils.train.fit.model_options).
MODEL_OPTIONS: tuple[str, ...] = ("dropout", "l1", "init")
# Initialisers of the paper CNN's ReLU layers: Keras's default Glorot uniform, which the paper's Keras
# code presumably used, or He uniform / normal (He et al. 2015), scaled for ReLU.
PAPER_INIT = "glorot_uniform"
INITS: tuple[str, ...] = (PAPER_INIT, "he_uniform", "he_normal")
# Class weighting of the loss (TrainConfig.class_weights): "balanced" weighs each class by n / (classes × its count).
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")
# Split protocols (fer_utils.data.splits) and the validation share carved out of the training side. `given`,
# the dataset's own split (train/ and test/ folders, FER-2013's Usage), is the default where a manifest has one
# (`splits.resolve_protocol`); otherwise the paper's.
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
CAM_METHODS: tuple[str, ...] = ("hirescam", "gradcam")
DEFAULT_CAM_METHOD = "hirescam"
