"""The chapters' kit: every name a chapter's code reads, from one module, as d2l's `from d2l import torch as d2l`:
a chapter runs `from fer_utils.book.kit import exercises, fer` and reads every name as `fer.name`.

The names are grouped by the chapter that first uses them, in the book's order. Only the package's own names:
a chapter imports the standard library itself. Importing the kit changes nothing (the chapters call
`fer.plots.book_style()`; the Colab install cell checks the runtime).
"""

# ruff: noqa: F401, I001  (the kit imports names to gather them, in the chapters' order: `__all__` lists them)
from __future__ import annotations

import sys


# 1. The dataset tour
from fer_utils.book import exercises, plots, widgets
from fer_utils.book.artifacts import GENERATED_DATASET, Dataset
from fer_utils.book.glue import glue
from fer_utils.data.corpora import EMOTIONS, MEAD_EMOTIONS, RAVDESS_EMOTIONS, SAVEE_EMOTIONS
from fer_utils.data.media import sample_frames

# 2. Preprocessing
from fer_utils.book.glue import speed_words
from fer_utils.book.results import record
from fer_utils.book.source import show
from fer_utils.data.manifest import load_manifest
from fer_utils.data.media import frame_count, frame_indices, read_frames, to_gray
from fer_utils.data.splits import audit_line
from fer_utils.faces import crops
from fer_utils.faces.crops import (
    DEFAULT_MARGIN,
    Box,
    align_face,
    crop_face,
    make_detector,
    make_landmarker,
    measure_detectors,
    square_region,
)
from fer_utils.registry import DETECTORS, PAPER_SIDE

# 3. The architecture
from fer_utils.assets import still_paths
from fer_utils.book.artifacts import train
from fer_utils.models import networks
from fer_utils.models.networks import PAPER_DROPOUT, build_paper_cnn, count_flops, count_params, layer_table
from fer_utils.registry import PAPER_INPUT_SHAPE
from fer_utils.train.config import REFERENCE_EPOCHS, REFERENCE_SIZE, TrainConfig
from fer_utils.train.pipeline import FaceData

# 4. Training
from fer_utils.book.chapters import check_frames, describe_frames
from fer_utils.book.claims import check_claims
from fer_utils.book.glue import over_seeds
from fer_utils.data.corpora import classes_in
from fer_utils.data.manifest import usable_frames
from fer_utils.data.splits import check_leakage, split_frames
from fer_utils.evaluate import metrics
from fer_utils.evaluate.metrics import classification_metrics, clip_vote, confusion, per_class_report, predicted_labels
from fer_utils.train import pipeline
from fer_utils.train.config import Feed
from fer_utils.train.fit import LastEpochWeights, compile_model, fit_model, run_callbacks, seed_everything
from fer_utils.train.pipeline import make_dataset
from fer_utils.train.runs import RunFolder

# 5. Overfitting and regularization
from fer_utils.book.chapters import (
    clamp_count,
    clamp_subjects,
    histories,
    runs_stopped_by_the_cap,
    summarize,
    train_variants,
)
from fer_utils.book.glue import difference
from fer_utils.registry import DEFAULT_DROPOUT, SAVEE_DROPOUT
from fer_utils.train.fit import alive_units
from fer_utils.train.pipeline import load_images

# 6. Evaluation protocols
from fer_utils.book.chapters import beyond_spread, confidence_interval, mean_std
from fer_utils.data.splits import LeakReport, Split, group_holdout, holdout, random_holdout

# 7. Comparison with the state of the art
from fer_utils.data.splits import chosen_protocol
from fer_utils.deploy.tflite import compiled_predictor, keras_latency, median_seconds
from fer_utils.models.cited_lstms import build_landmark_lstm, build_vggface_lstm
from fer_utils.models.networks import (
    batch_norm,
    build_cnn_lstm,
    build_mini_xception,
    build_model,
    build_wild_cnn,
    layer_macs,
    separable_residual_block,
)
from fer_utils.registry import CANONICAL_INPUTS, PAPER_LSTM_PARAMS_RATIO, SEQUENCE_FRAMES, WILD_INPUT_SHAPE, WILD_MODEL
from fer_utils.train.config import PRESETS
from fer_utils.train.fit import training_seconds_per_image
from fer_utils.train.sequences import ClipData

# 8. Deployment
from fer_utils.book.glue import fastest
from fer_utils.assets import ravdess_clip_path
from fer_utils.data.media import to_rgb
from fer_utils.deploy import tflite
from fer_utils.deploy.inference import Recognizer
from fer_utils.deploy.tflite import (
    TFLITE_MODES,
    deployment_table,
    inference_paths,
    latency_table,
    prune_magnitude,
    quantize_float16,
    quantize_int8,
    representative_dataset,
    runtime_logs_held,
    sparsity_of,
    tflite_interpreter,
    to_tflite,
)
from fer_utils.evaluate.explain import grad_cam, last_conv_layer

# 9. Real faces
from fer_utils.assets import cremad_dir, london_faces_dir
from fer_utils.book.artifacts import default_cache
from fer_utils.book.chapters import bootstrap_interval, faces_scored, guessing_ceiling, index_table
from fer_utils.evaluate.metrics import transfer_scores
from fer_utils.train.fit import predict_batches

# 10. Seven expressions
from fer_utils.book import realfaces
from fer_utils.deploy.pretrained import pretrained_card, pretrained_dir, pretrained_run, recipe_runs
from fer_utils.models.peer import PEER_CLASSES, PEER_NAME, peer_model

fer = sys.modules[__name__]  # `fer.Dataset`, `fer.plots`, …: a chapter's one handle on the book's package

# What the kit exports: every name gathered above (and `fer`), not its own imports of `sys` and `annotations`.
__all__ = [name for name in dir() if not name.startswith("_") and name not in ("annotations", "sys")]
