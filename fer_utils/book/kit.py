"""The chapters' kit: every name a chapter's code reads, from one module, as d2l's `from d2l import torch as d2l`:
a chapter runs `from fer_utils.book.kit import exercises, fer` and reads every name as `fer.name`."""

# ruff: noqa: F401  (the kit imports names to gather them: `__all__` below lists them all)
from __future__ import annotations

import sys

from fer_utils.book.colab import require_fresh_runtime

require_fresh_runtime()  # Colab only: stops if pip replaced numpy; before anything imports TensorFlow

import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from fer_utils.assets import cremad_dir, london_faces_dir, ravdess_clip_path, still_paths
from fer_utils.book import exercises, plots, realfaces, widgets
from fer_utils.book.artifacts import GENERATED_DATASET, Dataset, default_cache, train
from fer_utils.book.chapters import (
    beyond_spread,
    bootstrap_interval,
    check_frames,
    clamp_count,
    clamp_subjects,
    confidence_interval,
    describe_frames,
    faces_scored,
    guessing_ceiling,
    histories,
    index_table,
    mean_std,
    runs_note,
    runs_stopped_by_the_cap,
    summarize,
    train_variants,
)
from fer_utils.book.claims import check_claims
from fer_utils.book.glue import difference, glue, over_seeds, speed_words
from fer_utils.book.results import record
from fer_utils.book.source import show

# The modules whose code the chapters show (`fer.show(fer.networks._inputs, fer.build_paper_cnn)`).
from fer_utils.data.corpora import EMOTIONS, MEAD_EMOTIONS, RAVDESS_EMOTIONS, SAVEE_EMOTIONS, SPLITS, classes_in
from fer_utils.data.manifest import load_manifest, usable_frames
from fer_utils.data.media import frame_count, frame_indices, read_frames, sample_frames, to_gray, to_rgb
from fer_utils.data.splits import (
    LeakReport,
    Split,
    audit_line,
    check_leakage,
    chosen_protocol,
    group_holdout,
    holdout,
    random_holdout,
    split_frames,
)
from fer_utils.deploy import crossdata, tflite
from fer_utils.deploy.inference import Recognizer
from fer_utils.deploy.pretrained import PRETRAINED_NAME, pretrained_card, pretrained_dir, pretrained_run
from fer_utils.deploy.tflite import (
    TFLITE_MODES,
    compiled_predictor,
    deployment_table,
    inference_paths,
    keras_latency,
    latency_table,
    median_seconds,
    prune_magnitude,
    quantize_float16,
    quantize_int8,
    representative_dataset,
    representative_faces,
    runtime_logs_held,
    sparsity_of,
    tflite_interpreter,
    tflite_predict,
    to_tflite,
)
from fer_utils.evaluate import metrics
from fer_utils.evaluate.explain import grad_cam, last_conv_layer
from fer_utils.evaluate.metrics import (
    classification_metrics,
    clip_vote,
    confusion,
    per_class_report,
    predicted_labels,
    transfer_scores,
)
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
from fer_utils.models import networks
from fer_utils.models.cited_lstms import build_landmark_lstm, build_vggface_lstm
from fer_utils.models.networks import (
    PAPER_DROPOUT,
    batch_norm,
    build_cnn_lstm,
    build_mini_xception,
    build_model,
    build_paper_cnn,
    build_wild_cnn,
    count_flops,
    count_params,
    layer_macs,
    layer_table,
    separable_residual_block,
)
from fer_utils.models.peer import PEER_CLASSES, PEER_NAME, PEER_SIDE, export_peer, peer_model
from fer_utils.registry import (
    CANONICAL_INPUTS,
    DEFAULT_DROPOUT,
    DETECTORS,
    PAPER_INPUT_SHAPE,
    PAPER_LSTM_PARAMS_RATIO,
    PAPER_SIDE,
    SAVEE_DROPOUT,
    SEQUENCE_FRAMES,
    WILD_INPUT_SHAPE,
    WILD_MODEL,
)
from fer_utils.train import pipeline
from fer_utils.train.config import PRESETS, REFERENCE_EPOCHS, REFERENCE_SIZE, Feed, TrainConfig
from fer_utils.train.fit import (
    LastEpochWeights,
    alive_units,
    compile_model,
    fit_model,
    predict_batches,
    run_callbacks,
    seed_everything,
    training_seconds_per_image,
)
from fer_utils.train.pipeline import FaceData, load_images, make_dataset
from fer_utils.train.runs import RunFolder
from fer_utils.train.sequences import ClipData

plots.book_style()  # tables shown whole, figure text readable at the book's width

fer = sys.modules[__name__]  # `fer.Dataset`, `fer.plots`, …: a chapter's one handle on the book's package

# What the kit exports: every name gathered above (and `fer`), not its own imports of `sys` and the Colab check.
__all__ = [
    name for name in dir() if not name.startswith("_") and name not in ("annotations", "sys", "require_fresh_runtime")
]
