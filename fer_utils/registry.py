"""The names and the paper's numbers that the package, the CLI, the notebooks and the tests share.

Each is defined here once; the modules that own the behaviour (models, splits, faces, preprocess,
training, deploy, explain, download) import them from here, and so does the command line, which
builds its choices and defaults from this module. It imports nothing, so `python -m fer_utils --help`
never loads TensorFlow, dlib or OpenCV.
"""

from __future__ import annotations

# The paper (Ding, Tang & Lu 2023): 180×180 grayscale input, dropout 0.3 between the stages (the
# SAVEE setting raises the last two to 0.5, see fer_utils.models), Adam 1e-3, batch 32, 6 frames per
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
PAPER_LEARNING_RATE = 1e-3
PAPER_BATCH_SIZE = 32
PAPER_FRAMES = 6
PAPER_TEST_SIZE = 0.2
# The paper's count of its CNN (8 classes), and the one comparator of its Table I it concedes: an LSTM on RAVDESS
# (Ryumina & Karpov 2020) at 98.90 % with 116.5 times as many parameters (about 63 million).
PAPER_PARAMS = 542_136
PAPER_LSTM_ACCURACY = 0.9890
PAPER_LSTM_PARAMS_RATIO = 116.5

# Models: the registered names, each with the input and class count it is usually quoted at (the
# paper's table uses these for parameter counts; a sequence model's input is a clip, (frames, H, W, 1)).
# fer_utils.models.MODEL_BUILDERS has one builder each.
PAPER_MODEL = "paper-cnn"
CANONICAL_INPUTS: dict[str, tuple[tuple[int, ...], int]] = {
    PAPER_MODEL: (PAPER_INPUT_SHAPE, PAPER_CLASSES),
    "alexnet": ((227, 227, 3), 1000),
    "resnet50": ((224, 224, 3), 1000),
    "mobilenet-v2": ((224, 224, 3), 1000),
    "xception": ((299, 299, 3), 1000),
    "mini-xception": ((48, 48, 1), 7),
    "mobilenet-inception": (PAPER_INPUT_SHAPE, PAPER_CLASSES),
    "cnn-lstm": ((PAPER_FRAMES, *PAPER_INPUT_SHAPE), PAPER_CLASSES),  # a clip: the paper's frames per clip
}
MODEL_NAMES: tuple[str, ...] = tuple(CANONICAL_INPUTS)
# Sequence models (fer_utils.sequences): they read SEQUENCE_FRAMES frames of a clip at once (the paper's 6, the
# frames preprocessing cuts), so they train and test on whole clips, under the clip, subject or given protocol
# (`random` draws single frames and would put frames of one clip on both sides).
SEQUENCE_MODELS: tuple[str, ...] = ("cnn-lstm",)
SEQUENCE_FRAMES = PAPER_FRAMES
# The training options only the paper CNN's builder takes (its three dropout rates, the L1 factor on its dense
# layer, the initialiser of its ReLU layers): a builder gets those it names (fer_utils.training.model_options).
MODEL_OPTIONS: tuple[str, ...] = ("dropout", "l1", "init")
# Initialisers of the paper CNN's ReLU layers: Keras's default Glorot uniform, which the paper's Keras
# code presumably used, or He uniform / normal (He et al. 2015), scaled for ReLU.
PAPER_INIT = "glorot_uniform"
INITS: tuple[str, ...] = (PAPER_INIT, "he_uniform", "he_normal")
# Class weighting of the loss (fer_utils.train_config.TrainConfig.class_weights), and the named training recipes
# (`train --recipe NAME`, explicit options override them). "wild", for real faces of FER-2013's kind: the
# augmentation of Arriaga et al. (2017)'s recipe for mini-Xception (flips, ±10° rotation, shift and zoom 0.1)
# with the schedule measured on real FER-2013 through the CLI (benchmarks/README.md, "A recipe chosen on real
# FER-2013"): Adam at 1e-3, up to 60 epochs, the learning rate halved after 4 epochs without progress and early
# stopping after 12 (three halvings' room), and no class weights: balanced weights bought macro recall with
# accuracy there (0.489 against 0.560 test accuracy), so they stay an explicit choice (--class-weights balanced).
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")
TRAINING_RECIPES: dict[str, dict[str, object]] = {
    "wild": {
        "augment": True,
        "augment_rotation": 10.0,
        "augment_shift": 0.1,
        "augment_zoom": 0.1,
        "learning_rate": 1e-3,
        "epochs": 60,
        "patience": 12,
        "plateau": 4,
        "class_weights": "none",
    },
}
# The model the README recommends with the wild recipe for FER-2013-like data (48 px gray faces, 7 classes): the
# peer's own network, which beat the peer through the CLI (benchmarks/README.md).
WILD_MODEL = "mini-xception"

# Split protocols (fer_utils.splits) and the validation share carved out of the training side. `given` is
# the dataset's own split (its `split` column: train/ and test/ folders, FER-2013's Usage), the default of
# every run without a chosen protocol (`splits.resolve_protocol`) for a manifest that has one (GIVEN_PROTOCOL);
# otherwise the paper's.
PROTOCOLS: tuple[str, ...] = ("random", "clip", "subject", "given")
PAPER_PROTOCOL = "random"
SEQUENCE_PROTOCOLS: tuple[str, ...] = tuple(p for p in PROTOCOLS if p != PAPER_PROTOCOL)  # see SEQUENCE_MODELS
GIVEN_PROTOCOL = "given"
DEFAULT_VAL_SIZE = 0.1

# Face detectors (fer_utils.faces) and the crop (fer_utils.preprocess).
FACE_DETECTORS: tuple[str, ...] = ("dlib-hog", "dlib-cnn", "opencv-haar")  # the ones that look for faces
NO_DETECTOR = "none"  # the image is already a face crop: the box is the whole image
DETECTORS: tuple[str, ...] = (*FACE_DETECTORS, NO_DETECTOR)
DEFAULT_DETECTOR = "dlib-hog"  # the paper's
DEFAULT_MARGIN = 0.1  # around the face box, as a fraction of its side

# Datasets that `download` knows: RAVDESS and CREMA-D are fetched, the others print where to request them.
DOWNLOADABLE_DATASETS: tuple[str, ...] = ("ravdess", "cremad", "savee", "mead")

# Deployment (fer_utils.deploy) and explanations (fer_utils.explain).
TFLITE_MODES: tuple[str, ...] = ("float32", "float16", "int8")
DEFAULT_TFLITE_MODE = "int8"
CAM_METHODS: tuple[str, ...] = ("hirescam", "gradcam")
DEFAULT_CAM_METHOD = "hirescam"
