"""Checker functions for the classroom exercises: one module per chapter (`ch01` … `ch10`), the experiment
exercises of chapters 4 to 10 (`experiment`) and the feedback machinery they share (`feedback`)."""

from fer_utils.book.exercises.ch01 import check_clip_count, check_ravdess_parser
from fer_utils.book.exercises.ch02 import check_crop_inside, check_sample_indices
from fer_utils.book.exercises.ch03 import check_conv_params, check_fc_params, check_sequential_cnn
from fer_utils.book.exercises.ch04 import check_accuracy_from_confusion, check_majority_vote
from fer_utils.book.exercises.ch05 import check_generalization_gap, check_l1_on_fc
from fer_utils.book.exercises.ch06 import check_sibling_share, check_subject_split
from fer_utils.book.exercises.ch07 import check_conv_flops, check_param_ratio
from fer_utils.book.exercises.ch08 import check_int8_model, check_occlusion_map
from fer_utils.book.exercises.ch09 import check_confidence_interval, check_restricted_accuracy
from fer_utils.book.exercises.ch10 import check_macro_f1_present, check_majority_baseline
from fer_utils.book.exercises.experiment import check_experiment, experiment
from fer_utils.book.exercises.feedback import Feedback, check_number, coding_exercise, untampered

__all__ = [
    "Feedback",
    "check_accuracy_from_confusion",
    "check_clip_count",
    "check_confidence_interval",
    "check_conv_flops",
    "check_conv_params",
    "check_crop_inside",
    "check_experiment",
    "check_fc_params",
    "check_generalization_gap",
    "check_int8_model",
    "check_l1_on_fc",
    "check_macro_f1_present",
    "check_majority_baseline",
    "check_majority_vote",
    "check_number",
    "check_occlusion_map",
    "check_param_ratio",
    "check_ravdess_parser",
    "check_restricted_accuracy",
    "check_sample_indices",
    "check_sequential_cnn",
    "check_sibling_share",
    "check_subject_split",
    "coding_exercise",
    "experiment",
    "untampered",
]
