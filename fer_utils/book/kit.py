"""The chapters' kit: every name a chapter's code reads, from one module, as d2l's `from d2l import torch as d2l`.

A chapter imports it in one statement, `from fer_utils.book.kit import exercises, fer`, and reads every package
name as `fer.name`: the data a chapter reads (`fer.Dataset`), what a run learns from (`fer.FaceData`), its
configuration (`fer.TrainConfig`), training (`fer.train(build, data, config)`, a cached run), the reports over
seeds (`fer.summarize`), the numbers its text states (`fer.glue`), the claims it checks (`fer.check_claims`),
the code it shows (`fer.show(fer.fit_model)`) and the modules `fer.plots`, `fer.widgets`, `fer.realfaces`,
`fer.demo`; `exercises` holds the checkers.
Each name is defined in its own module and only gathered here; importing this module imports them all
(TensorFlow with them). On Colab it first checks the runtime (`colab.require_fresh_runtime`: when pip replaced
the numpy the kernel had loaded, it stops and asks for a restart), before anything imports TensorFlow.
"""

from __future__ import annotations

import sys

from fer_utils.book.colab import require_fresh_runtime

require_fresh_runtime()  # on Colab only: whether TensorFlow sees a GPU; stops, asking for a restart, if numpy changed

import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path

from fer_utils.assets import cremad_dir, london_faces_dir, ravdess_clip_path, still_paths
from fer_utils.book import chapters, demo, exercises, plots, realfaces, widgets
from fer_utils.book.artifacts import GENERATED_DATASET, SAMPLE_DATASET, Dataset, default_cache, train
from fer_utils.book.chapters import (
    beyond_spread,
    bootstrap_interval,
    check_frames,
    clamp_count,
    clamp_subjects,
    confidence_interval,
    describe_frames,
    difference_note,
    faces_scored,
    guessing_ceiling,
    histories,
    index_table,
    mean_std,
    runs_note,
    runs_stopped_by_the_cap,
    seed_spread,
    summarize,
    train_variants,
)
from fer_utils.book.cited import cited
from fer_utils.book.claims import check_claims
from fer_utils.book.glue import difference, glue, over_seeds, speed_words
from fer_utils.book.source import show

# The modules whose code the chapters show (`fer.show(fer.networks._inputs, fer.build_paper_cnn)`).
from fer_utils.data import splits, video
from fer_utils.data.corpora import EMOTIONS, MEAD_EMOTIONS, RAVDESS_EMOTIONS, SAVEE_EMOTIONS, SPLITS, classes_in
from fer_utils.data.duplicates import audit_line
from fer_utils.data.images import to_gray, to_rgb
from fer_utils.data.manifest import load_manifest, usable_frames
from fer_utils.data.splits import (
    LeakReport,
    Split,
    check_leakage,
    check_split_request,
    chosen_protocol,
    given_split,
    group_holdout,
    holdout,
    random_holdout,
    split_frames,
)
from fer_utils.data.video import frame_count, frame_indices, read_frames, sample_frames
from fer_utils.deploy import crossdata, tflite
from fer_utils.deploy.inference import Recognizer
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
from fer_utils.errors import InputError
from fer_utils.evaluate import explain, metrics
from fer_utils.evaluate.explain import alive_units, grad_cam, last_conv_layer
from fer_utils.evaluate.metrics import (
    VOTE_METHODS,
    classification_metrics,
    clip_vote,
    confusion,
    per_class_report,
    predicted_labels,
    transfer_scores,
)
from fer_utils.faces import crops
from fer_utils.faces.crops import DEFAULT_MARGIN, DEFAULT_SIZE, align_face, crop_face, square_region
from fer_utils.faces.detectors import Box, make_detector, make_landmarker, measure_detectors
from fer_utils.models import networks
from fer_utils.models.cited_lstms import build_landmark_lstm, build_vggface_lstm
from fer_utils.models.networks import (
    CNN_LSTM_UNITS,
    INITS,
    MODEL_BUILDERS,
    PAPER_DROPOUT,
    PAPER_INIT,
    ModelBuilder,
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
    strided_pointwise,
)
from fer_utils.models.peer import PEER_CLASSES, PEER_NAME, PEER_SIDE, export_peer, peer_model
from fer_utils.registry import (
    CAM_METHODS,
    CANONICAL_INPUTS,
    DEFAULT_CAM_METHOD,
    DEFAULT_DROPOUT,
    DETECTORS,
    GIVEN_PROTOCOL,
    PAPER_BATCH_SIZE,
    PAPER_INPUT_SHAPE,
    PAPER_LSTM_PARAMS_RATIO,
    PAPER_PROTOCOL,
    PAPER_SIDE,
    PAPER_TEST_SIZE,
    SAVEE_DROPOUT,
    SEQUENCE_FRAMES,
    WILD_BN_MOMENTUM,
    WILD_INPUT_SHAPE,
    WILD_MODEL,
    WILD_WIDTHS,
)
from fer_utils.train import fit, pipeline
from fer_utils.train.augment import augment_batches
from fer_utils.train.config import PRESETS, REFERENCE_EPOCHS, REFERENCE_SIZE, Augmentation, Feed, TrainConfig
from fer_utils.train.fit import (
    AveragedAtStop,
    LastEpochWeights,
    StopBetweenBatches,
    batches_per_epoch,
    compile_model,
    fit_model,
    model_options,
    predict_batches,
    run_callbacks,
    seed_everything,
    training_seconds_per_image,
)
from fer_utils.train.inference_scores import InferenceScores
from fer_utils.train.pipeline import FaceData, class_indices, flip_and_shift, load_images, make_dataset
from fer_utils.train.recipe import TimeBudget, accuracy, learning_rate, loss
from fer_utils.train.runs import RunFolder
from fer_utils.train.sequences import ClipData

plots.book_style()  # tables shown whole, figure text readable at the book's width

fer = sys.modules[__name__]  # `fer.Dataset`, `fer.plots`, …: a chapter's one handle on the book's package

__all__ = [
    "glue",
    "over_seeds",
    "difference",
    "speed_words",
    "check_claims",
    "show",
    "splits",
    "video",
    "LeakReport",
    "group_holdout",
    "holdout",
    "random_holdout",
    "frame_indices",
    "tflite",
    "quantize_float16",
    "quantize_int8",
    "representative_dataset",
    "explain",
    "metrics",
    "last_conv_layer",
    "VOTE_METHODS",
    "clip_vote",
    "crops",
    "square_region",
    "networks",
    "batch_norm",
    "build_cnn_lstm",
    "layer_macs",
    "separable_residual_block",
    "fit",
    "pipeline",
    "LastEpochWeights",
    "fit_model",
    "run_callbacks",
    "align_face",
    "alive_units",
    "audit_line",
    "Augmentation",
    "batches_per_epoch",
    "beyond_spread",
    "bootstrap_interval",
    "Box",
    "build_landmark_lstm",
    "build_mini_xception",
    "build_model",
    "build_paper_cnn",
    "build_vggface_lstm",
    "build_wild_cnn",
    "Callable",
    "CAM_METHODS",
    "CANONICAL_INPUTS",
    "chapters",
    "check_frames",
    "check_leakage",
    "check_split_request",
    "chosen_protocol",
    "cited",
    "clamp_count",
    "clamp_subjects",
    "class_indices",
    "classes_in",
    "classification_metrics",
    "ClipData",
    "CNN_LSTM_UNITS",
    "combinations",
    "compile_model",
    "compiled_predictor",
    "confidence_interval",
    "confusion",
    "count_flops",
    "count_params",
    "cremad_dir",
    "crop_face",
    "crossdata",
    "dataclass",
    "Dataset",
    "default_cache",
    "DEFAULT_CAM_METHOD",
    "DEFAULT_DROPOUT",
    "DEFAULT_MARGIN",
    "DEFAULT_SIZE",
    "demo",
    "deployment_table",
    "describe_frames",
    "DETECTORS",
    "difference_note",
    "EMOTIONS",
    "exercises",
    "export_peer",
    "FaceData",
    "faces_scored",
    "Feed",
    "fer",
    "field",
    "flip_and_shift",
    "frame_count",
    "GENERATED_DATASET",
    "GIVEN_PROTOCOL",
    "given_split",
    "grad_cam",
    "guessing_ceiling",
    "histories",
    "index_table",
    "inference_paths",
    "InferenceScores",
    "INITS",
    "InputError",
    "Iterator",
    "json",
    "keras_latency",
    "latency_table",
    "layer_table",
    "learning_rate",
    "accuracy",
    "augment_batches",
    "load_images",
    "load_manifest",
    "london_faces_dir",
    "loss",
    "make_dataset",
    "make_detector",
    "make_landmarker",
    "Mapping",
    "MEAD_EMOTIONS",
    "mean_std",
    "measure_detectors",
    "median_seconds",
    "MODEL_BUILDERS",
    "model_options",
    "ModelBuilder",
    "PAPER_BATCH_SIZE",
    "PAPER_DROPOUT",
    "PAPER_INIT",
    "PAPER_INPUT_SHAPE",
    "PAPER_LSTM_PARAMS_RATIO",
    "PAPER_PROTOCOL",
    "PAPER_SIDE",
    "PAPER_TEST_SIZE",
    "Path",
    "PEER_CLASSES",
    "peer_model",
    "PEER_NAME",
    "PEER_SIDE",
    "per_class_report",
    "plots",
    "predict_batches",
    "predicted_labels",
    "PRESETS",
    "prune_magnitude",
    "ravdess_clip_path",
    "RAVDESS_EMOTIONS",
    "read_frames",
    "realfaces",
    "Recognizer",
    "REFERENCE_EPOCHS",
    "REFERENCE_SIZE",
    "replace",
    "representative_faces",
    "RunFolder",
    "runs_note",
    "runs_stopped_by_the_cap",
    "runtime_logs_held",
    "SAMPLE_DATASET",
    "sample_frames",
    "SAVEE_DROPOUT",
    "SAVEE_EMOTIONS",
    "seed_everything",
    "seed_spread",
    "Sequence",
    "SEQUENCE_FRAMES",
    "sparsity_of",
    "Split",
    "split_frames",
    "SPLITS",
    "still_paths",
    "StopBetweenBatches",
    "AveragedAtStop",
    "strided_pointwise",
    "summarize",
    "tempfile",
    "tflite_interpreter",
    "TFLITE_MODES",
    "tflite_predict",
    "time",
    "TimeBudget",
    "to_gray",
    "to_rgb",
    "to_tflite",
    "train",
    "train_variants",
    "TrainConfig",
    "training_seconds_per_image",
    "transfer_scores",
    "usable_frames",
    "widgets",
    "WILD_INPUT_SHAPE",
    "WILD_MODEL",
    "WILD_WIDTHS",
    "WILD_BN_MOMENTUM",
]
