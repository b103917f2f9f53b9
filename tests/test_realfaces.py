"""The real faces the book ships as test sets (fer_utils.book.realfaces), cropped with dlib, and a model scored
on them: what chapter 10 reports for the generated-face model and the peer."""

from __future__ import annotations

import pandas as pd
import pytest

from fer_utils.book import realfaces


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, realfaces.RealSet]:
    return realfaces.real_sets(cache=tmp_path_factory.mktemp("cache"))


def test_the_real_sets_hold_all_seven_expressions_of_the_generated_faces(sets) -> None:
    sizes = {name: len(real.frames) for name, real in sets.items()}
    assert sizes == {"London faces": 204, "RAVDESS stills": 24, "CREMA-D clips": 36, "RAVDESS clip": 6}
    emotions = set().union(*(set(real.frames["emotion"]) for real in sets.values()))
    assert emotions == {"neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"}
    assert sets["London faces"].frames["subject"].nunique() == 102
    assert set(sets["RAVDESS stills"].frames["emotion"]) == {"neutral"}


def test_the_peer_scores_on_the_real_sets_with_majority_baselines_and_clip_votes(sets) -> None:
    from fer_utils.models.peer import PEER_CLASSES, peer_model

    classes = list(PEER_CLASSES)
    predictions = realfaces.predict_real(peer_model(), classes, sets)
    assert len(predictions) == 270 and set(predictions["set"]) == set(sets)
    table = realfaces.score_real(predictions, classes).set_index("set")
    assert table.loc[realfaces.POOLED, "frames"] == 270 and table.loc[realfaces.POOLED, "emotions"] == 7
    assert table.loc["London faces", "majority baseline"] == pytest.approx(0.5)
    assert table.loc["clip votes (CREMA-D + RAVDESS)", "frames"] == 7  # six CREMA-D clips and one RAVDESS clip
    assert table.loc["London faces", "accuracy"] > 0.55  # the peer learnt real smiles (measured 0.657)
    recall = realfaces.recall_per_class(predictions, classes)
    right = predictions["emotion"] == predictions["predicted"]
    assert recall["neutral"] == pytest.approx(right[predictions["emotion"] == "neutral"].mean())


def test_a_set_scores_macro_f1_only_over_the_emotions_it_holds() -> None:
    predictions = pd.DataFrame(
        {
            "set": "x",
            "emotion": ["happy", "happy", "neutral", "neutral"],
            "predicted": ["happy", "sad", "neutral", "neutral"],
        }
    )
    row = realfaces.score_real(predictions, ["happy", "neutral", "sad"]).iloc[0]
    # happy F1 = 2/3 (precision 1, recall 1/2), neutral F1 = 1; "sad" (absent) is not averaged in
    assert row["emotions"] == 2 and row["macro F1"] == pytest.approx((2 / 3 + 1) / 2)


def test_a_model_that_knows_only_some_emotions_is_scored_on_the_frames_it_can_name(sets) -> None:
    """Regression: a neutral/happy model (chapter 10 run on a reader's two-class folder) met the RAVDESS clip,
    all surprised, and make_dataset got an empty table (a TensorFlow TypeError instead of a score)."""
    from fer_utils.models.networks import build_paper_cnn

    classes = ["neutral", "happy"]
    predictions = realfaces.predict_real(build_paper_cnn(2, (32, 32, 1)), classes, sets)
    assert set(predictions["set"]) == {"London faces", "RAVDESS stills", "CREMA-D clips"}
    assert set(predictions["emotion"]) == set(classes) and len(predictions) == 204 + 24 + 12
    scored = realfaces.score_real(predictions, classes).set_index("set")
    assert scored.loc[realfaces.POOLED, "frames"] == 240


def test_another_form_of_the_model_scores_the_real_sets_when_given(sets) -> None:
    """Chapter 10 scores its int8 TFLite copy through `predict` (the parameter had gone, and the chapter failed):
    the predictions are that function's, not the Keras model's."""
    import numpy as np

    from fer_utils.models.networks import build_paper_cnn

    classes = ["neutral", "happy"]

    def always_happy(images: np.ndarray) -> np.ndarray:
        return np.tile([0.1, 0.9], (len(images), 1)).astype("float32")

    predictions = realfaces.predict_real(build_paper_cnn(2, (32, 32, 1)), classes, sets, predict=always_happy)
    assert len(predictions) == 204 + 24 + 12 and set(predictions["predicted"]) == {"happy"}


def test_accuracy_per_group_of_london_sitters_with_intervals_over_people() -> None:
    """Each London sitter's two faces scored per gender, ethnicity and age band, from london_info.csv: the accuracy
    is the group's share right, and the bootstrap draws people, so a group whose sitters are all right or all wrong
    has no spread, and a mixed one an interval around its accuracy."""
    info = realfaces.london_groups()
    assert len(info) == 102 and set(info["age"]) <= {band for *_, band in realfaces.AGE_BANDS} | {"not given"}
    women = set(info.loc[info["gender"] == "female", "subject"])
    rows = [
        {
            "set": "London faces",
            "subject": person,
            "emotion": emotion,
            "predicted": emotion if person in women else "sad",
        }
        for person in info["subject"]
        for emotion in ("neutral", "happy")
    ]
    man = next(i for i, row in enumerate(rows) if row["subject"] not in women)
    rows[man]["predicted"] = rows[man]["emotion"]  # one man right once
    rows.append({"set": "RAVDESS stills", "subject": "Actor_01", "emotion": "neutral", "predicted": "happy"})
    groups = realfaces.group_scores(pd.DataFrame(rows), draws=200).set_index(["attribute", "group"])
    women_row, men_row = groups.loc[("gender", "female")], groups.loc[("gender", "male")]
    assert (women_row["people"], women_row["faces"]) == (len(women), 2 * len(women))
    assert women_row["accuracy"] == women_row["low"] == women_row["high"] == 1.0
    assert men_row["accuracy"] == pytest.approx(1 / (2 * men_row["people"]))
    assert men_row["low"] == 0.0 < men_row["accuracy"] < men_row["high"]  # drawn with or without that one man
    assert set(groups.index.get_level_values("attribute")) == {"gender", "ethnicity", "age"}
    assert groups.xs("ethnicity")["people"].sum() == 102  # every sitter in exactly one group per attribute
