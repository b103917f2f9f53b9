"""Counting live units of a ReLU layer, on real face crops (tests/toy_data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_utils.data.manifest import usable_frames
from fer_utils.models.networks import build_paper_cnn
from fer_utils.train.fit import alive_units
from fer_utils.train.pipeline import load_images


def test_alive_units_sees_dead_and_live_dense_units(tmp_path: Path) -> None:
    from toy_data import make_toy_crops

    frames = usable_frames(make_toy_crops(tmp_path, size=48, frames_per_clip=1))
    images = load_images(frames, tmp_path, (48, 48))
    model = build_paper_cnn(3, (48, 48, 1), dropout=(0.0, 0.0, 0.0))
    fc = model.get_layer("fc")
    kernel, bias = fc.get_weights()
    fc.set_weights([np.abs(kernel), np.ones_like(bias)])  # non-negative inputs: every unit fires
    assert alive_units(model, images) == 16
    fc.set_weights([-np.abs(kernel), np.full_like(bias, -1.0)])  # every pre-activation below zero
    assert alive_units(model, images) == 0
    fc.set_weights([np.concatenate([np.abs(kernel[:, :5]), -np.abs(kernel[:, 5:])], axis=1), np.zeros_like(bias)])
    assert alive_units(model, images) == 5
