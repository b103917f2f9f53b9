"""What the chapters say about their data and check before they start (fer_utils.book.chapters), and how
`book execute --param` passes parameters to the chapters."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_book.execute import DATA_DIR_PARAMETER, DATASET_PARAMETER, declared_parameters, parse_parameter
from fer_book.toc import toc_notebooks
from fer_utils.book import chapters
from fer_utils.errors import FerError

REPO = Path(__file__).resolve().parents[1]


def frames_of(
    subjects: int, clips_per_subject: int = 2, emotions: tuple[str, ...] = ("neutral", "happy")
) -> pd.DataFrame:
    """A frame table with `subjects` people, each with clips of every emotion."""
    rows = [
        {"subject": f"p{s}", "clip_id": f"p{s}_{e}_{c}", "emotion": e, "image": f"{e}/p{s}_{c}.png"}
        for s in range(subjects)
        for e in emotions
        for c in range(clips_per_subject)
    ]
    return pd.DataFrame(rows)


def test_only_the_sample_is_called_synthetic() -> None:
    from fer_utils.book.artifacts import Dataset

    assert "synthetic" in Dataset("sample").label
    for dataset in ("ravdess", "savee", "mead", "folder", "cremad"):
        label = Dataset(dataset, "/data/my_faces").label
        assert "synthetic" not in label and dataset in label and "my_faces" in label


def test_a_real_dataset_without_its_folder_is_refused() -> None:
    from fer_utils.book.artifacts import Dataset
    from fer_utils.errors import InputError

    with pytest.raises(InputError, match="'ravdess' needs DATA_DIR"):
        Dataset("ravdess")


def test_a_mistyped_dataset_or_a_folder_given_to_the_sample_is_refused_by_name() -> None:
    """`Dataset("Sample")` said it "needs DATA_DIR"; `Dataset("sample", "/data/ravdess")` dropped the folder and
    trained on the synthetic sample, its results labelled as the sample's, DATASET forgotten."""
    from fer_utils.book.artifacts import Dataset
    from fer_utils.errors import InputError

    with pytest.raises(InputError, match="unknown dataset 'Sample' .*choose one of sample, diffusionfer, ravdess"):
        Dataset("Sample")
    with pytest.raises(InputError, match="DATA_DIR /data/ravdess goes with a dataset you downloaded.*set DATASET"):
        Dataset("sample", "/data/ravdess")


def test_a_subject_split_needs_three_subjects() -> None:
    with pytest.raises(
        chapters.InputError, match=r"subject split needs at least 3 subjects.*has 2.*PROTOCOLS = \['random'\]"
    ):
        chapters.check_frames(frames_of(2), ["random", "subject"])
    chapters.check_frames(frames_of(3), ["random", "clip", "subject"])  # enough: no error


def test_the_random_split_the_datasets_own_and_the_one_left_to_resolve_need_no_groups() -> None:
    """Chapter 7 checks the protocol `chosen_protocol` gives, None when the dataset keeps its own split or
    one face a person: neither those nor "given" count subjects or clips; "subject" still does."""
    chapters.check_frames(frames_of(1, 1), [None, "random", "given"])  # one subject, 2 clips: no error
    with pytest.raises(chapters.InputError, match="subject split needs at least 3 subjects"):
        chapters.check_frames(frames_of(1), [None, "subject"])


def test_a_run_stopped_by_the_cap_is_one_with_fewer_than_patience_epochs_after_its_best() -> None:
    runs = pd.DataFrame({"epochs": [30, 80, 80, 12], "best epoch": [25, 80, 76, 7]})
    assert chapters.runs_stopped_by_the_cap(runs, 5) == 2  # 80/80 still improving, 80/76 cut before waiting 5
    assert chapters.runs_stopped_by_the_cap(runs, 4) == 1
    assert chapters.runs_stopped_by_the_cap(runs.iloc[:0], 5) == 0


def test_one_emotion_or_no_frames_is_refused_with_what_to_change() -> None:
    with pytest.raises(chapters.InputError, match="at least 2 emotions"):
        chapters.check_frames(frames_of(4, emotions=("happy",)))
    with pytest.raises(chapters.InputError, match="no usable face crops"):
        chapters.check_frames(frames_of(4).iloc[:0])


def test_more_subjects_or_samples_than_the_data_has_are_fitted_with_a_note(capsys: pytest.CaptureFixture) -> None:
    frames = frames_of(5)
    assert chapters.clamp_subjects(frames, 12) == [f"p{s}" for s in range(5)]
    assert "SUBJECTS = 12, but the data has 5 subjects" in capsys.readouterr().out
    assert chapters.clamp_subjects(frames, 2) == ["p0", "p1"] and chapters.clamp_subjects(frames, None) is None
    assert chapters.clamp_count(300, 144, "probe images") == 144
    assert "only 144 are available" in capsys.readouterr().out


def test_spread_and_confidence_interval_match_their_definitions() -> None:
    values = [0.80, 0.90, 0.85, 0.95, 0.75]
    low, high = chapters.confidence_interval(values)
    # mean 0.85, sample std 0.0790569, t(0.975, 4) = 2.7764451
    half = 2.7764451 * 0.0790569 / math.sqrt(5)
    assert low == pytest.approx(0.85 - half, abs=1e-6) and high == pytest.approx(0.85 + half, abs=1e-6)
    assert chapters.mean_std(values) == "0.850 ± 0.079"
    # one run has no spread, and a missing value is not a number: never "± nan"
    assert chapters.mean_std([0.41]) == "0.410 (one run: no spread)"
    assert chapters.mean_std([*values, float("nan")]) == "0.850 ± 0.079 (1 missing)"
    assert chapters.mean_std([float("nan")]) == "no value (1 missing)"
    # counts (epochs, clips) to one decimal, not "24.667 ± 6.110" epochs
    assert chapters.mean_std([20, 24, 30]) == "24.7 ± 5.0" and chapters.mean_std([45]) == "45 (one run: no spread)"
    assert chapters.mean_ci([0.41]) == "needs 2 runs or more"


def test_a_difference_within_the_spread_is_called_that() -> None:
    same = chapters.difference_note([0.80, 0.90, 0.85], [0.82, 0.88, 0.86], "a", "b", "accuracy")
    assert "within the spread" in same
    clear = chapters.difference_note([0.90, 0.91, 0.92], [0.60, 0.61, 0.62], "a", "b", "accuracy")
    assert "larger than the spread" in clear and "+0.300" in clear
    single = chapters.difference_note([0.9], [0.6], "a", "b", "accuracy")
    assert "no spread measured" in single and "larger" not in single and "within" not in single


@pytest.mark.parametrize(
    "text, expected",
    [
        ("DATASET=ravdess", ("DATASET", "ravdess")),
        ("DATA_DIR=/data/ravdess", ("DATA_DIR", "/data/ravdess")),
        ("EPOCHS=30", ("EPOCHS", 30)),
        ("SUBJECTS=None", ("SUBJECTS", None)),
        ("SEEDS=[0, 1, 2]", ("SEEDS", [0, 1, 2])),
    ],
)
def test_parameters_are_read_as_literals_or_text(text: str, expected: tuple) -> None:
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("text", ["DATASET", "=ravdess", "2X=1"])
def test_a_malformed_parameter_is_refused(text: str) -> None:
    with pytest.raises(FerError, match="NAME=VALUE"):
        parse_parameter(text)


def parameters_set_by(notebook: Path) -> dict[str, object]:
    """What the chapter's cell tagged `parameters` sets, run as the chapter runs it (after its kit import)."""
    import nbformat

    from fer_book.execute import PARAMETERS_TAG
    from fer_utils.book import kit

    (cell,) = [c for c in nbformat.read(notebook, as_version=4).cells if PARAMETERS_TAG in c.metadata.get("tags", [])]
    namespace: dict[str, object] = {"fer": kit}
    exec(compile(cell.source, notebook.name, "exec"), namespace)
    return {name: value for name, value in namespace.items() if name not in ("fer", "__builtins__")}


def test_every_chapter_takes_dataset_and_data_dir(repo_root) -> None:
    """Every name a chapter's parameters cell sets is one `book execute --param` can give it (papermill's
    reader once left out `EPOCHS = 45  # patience = EPOCHS: …`, an `=` in its comment), DATASET and DATA_DIR
    among them."""
    for notebook in toc_notebooks(repo_root):
        values = parameters_set_by(repo_root / notebook)
        assert declared_parameters(repo_root / notebook) == set(values), notebook
        assert {DATASET_PARAMETER, DATA_DIR_PARAMETER} <= set(values), notebook


def test_a_parameter_papermill_cannot_read_is_caught(tmp_path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('DATASET = "sample"\nDATA_DIR = None\nEPOCHS = 45  # patience = EPOCHS: none')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "chapter.ipynb")
    assert set(parameters_set_by(tmp_path / "chapter.ipynb")) == {"DATASET", "DATA_DIR", "EPOCHS"}
    assert declared_parameters(tmp_path / "chapter.ipynb") == {"DATASET", "DATA_DIR"}


def test_the_kit_gives_each_name_as_its_own_module_defines_it() -> None:
    """The kit gathers names, it defines none (but `fer`, itself): each is the very object of its module."""
    import inspect

    from fer_utils.book import kit

    assert kit.fer is kit and "fer" in kit.__all__ and len(kit.__all__) == len(set(kit.__all__))
    for name in kit.__all__:
        value = getattr(kit, name)
        home = getattr(value, "__module__", None) or (value.__name__ if inspect.ismodule(value) else None)
        assert home != kit.__name__ or name == "fer", f"{name} is defined in the kit"
        assert home is None or home.startswith("fer_utils"), f"{name} is {home}'s, not the package's"


def test_importing_the_kit_changes_no_setting() -> None:
    """In a fresh interpreter, importing the kit leaves pandas' display options and matplotlib's settings as they
    were: a chapter sets the book's look itself (`fer.plots.book_style()`), which does change them."""
    script = """
import warnings
import matplotlib as mpl
import pandas as pd

def settings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.get_option("display.max_colwidth"), pd.get_option("display.max_columns"), dict(mpl.rcParams)

before = settings()
from fer_utils.book.kit import fer
assert settings() == before, "importing the kit changed a setting"
fer.plots.book_style()
assert settings() != before, "book_style changed nothing"
print("unchanged")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "unchanged", result.stderr[-2000:]


def test_train_variants_varies_one_thing_and_caches_each_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One real (1-epoch, 16×16) run per variant and seed on toy crops of the real stills, each with its own
    setting and the fixed ones, returned as a tidy table (one row per variant and seed: the run folder, the
    variant's settings, the run's own scores); asking again trains nothing; variants that change different
    settings, or the seed, are refused."""
    import json

    from toy_data import make_toy_crops

    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    crops = tmp_path / "crops"
    make_toy_crops(crops, size=16, frames_per_clip=1)
    variants = {"none": {"dropout": (0.0, 0.0, 0.0), "l1": 0.0}, "last": {"dropout": (0.0, 0.0, 0.5), "l1": 1e-4}}
    fixed = TrainConfig.preset("reference", image_size=(16, 16), epochs=1, patience=1, protocol="subject")
    runs = chapters.train_variants(None, FaceData(crops), fixed, variants, [0, 1])
    assert list(zip(runs["variant"], runs["seed"])) == [("none", 0), ("none", 1), ("last", 0), ("last", 1)]
    assert list(runs.columns[:4]) == ["variant", "seed", "run", "dropout"] and "l1" in runs.columns
    assert set(runs["run"].iloc[0].scores()) <= set(runs.columns)
    assert runs["run"].nunique() == 4
    for _, row in runs.iterrows():
        config = json.loads((row["run"] / "config.json").read_text())
        metrics = json.loads((row["run"] / "metrics.json").read_text())
        history = pd.read_csv(row["run"] / "history.csv")
        assert tuple(config["dropout"]) == variants[row["variant"]]["dropout"] == row["dropout"]
        assert config["l1"] == variants[row["variant"]].get("l1", 0.0) and config["seed"] == row["seed"]
        assert config["epochs"] == 1 and config["protocol"] == "subject" and config["image_size"] == [16, 16]
        assert row["accuracy"] == metrics["test"]["frame"]["accuracy"]
        assert row["macro F1"] == metrics["test"]["frame"]["f1_macro"]
        assert row["clip accuracy"] == metrics["test"]["clip"]["accuracy"]
        assert row["collapsed"] == metrics["collapsed"] and row["params"] == config["params"]
        assert row["train accuracy"] == history["train_eval_accuracy"].iloc[-1]  # inference mode, as val is
        assert row["logged train accuracy"] == history["accuracy"].iloc[-1]
        assert row["val accuracy"] == history["val_accuracy"].iloc[-1]
        assert row["gap"] == pytest.approx(row["train accuracy"] - row["val accuracy"])
    assert runs.loc[runs["variant"] == "last", "l1"].tolist() == [1e-4, 1e-4]
    curves = chapters.histories(runs, 1)  # the `run` column holds RunFolders
    assert list(curves) == ["none", "last"]
    for history, run in zip(curves.values(), runs.loc[runs["seed"] == 1, "run"]):
        pd.testing.assert_frame_equal(history, pd.read_csv(run / "history.csv"))
    stamps = [(path / "config.json").stat().st_mtime_ns for path in runs["run"]]
    again = chapters.train_variants(None, FaceData(crops), fixed, variants, [0, 1])
    pd.testing.assert_frame_equal(again, runs)
    assert [(path / "config.json").stat().st_mtime_ns for path in again["run"]] == stamps
    summary, verdicts = chapters.summarize(runs, "variant", ["accuracy", "gap"], compare={"accuracy": "accuracy"})
    assert summary["variant"].tolist() == ["none", "last"] and summary["seeds"].tolist() == [2, 2]
    assert summary["accuracy"].tolist() == [
        chapters.mean_std(g["accuracy"]) for _, g in runs.groupby("variant", sort=False)
    ]
    assert len(verdicts) == 1 and verdicts[0].startswith("last minus none: ")
    with pytest.raises(chapters.InputError, match=r"change different settings.*'fast': \['epochs'\]"):
        chapters.train_variants(None, FaceData(crops), fixed, {**variants, "fast": {"epochs": 2}}, [0])
    with pytest.raises(chapters.InputError, match=r"a variant sets the seed"):
        chapters.train_variants(None, FaceData(crops), fixed, {"one": {"seed": 2}}, [0])


def experiment(accuracies: dict[str, list[float]], collapsed: dict[str, int] | None = None) -> pd.DataFrame:
    """A table like train_variants' (one row per variant and seed), with the given test accuracies; the
    first `collapsed[variant]` runs of a variant collapsed."""
    return pd.DataFrame(
        [
            {"variant": name, "seed": seed, "accuracy": value, "collapsed": seed < (collapsed or {}).get(name, 0)}
            for name, values in accuracies.items()
            for seed, value in enumerate(values)
        ]
    )


def test_summarize_gives_mean_and_std_per_group_and_says_whether_a_difference_beats_the_spread() -> None:
    runs = experiment({"a": [0.90, 0.91, 0.92], "b": [0.60, 0.61, 0.62], "c": [0.80, 0.95, 0.87]}, collapsed={"b": 1})
    summary, verdicts = chapters.summarize(runs, "variant", ["accuracy"], compare={"accuracy": "test accuracy"})
    assert summary.to_dict("records") == [
        {"variant": "a", "accuracy": "0.910 ± 0.010", "seeds": 3, "collapsed runs": 0},
        {"variant": "b", "accuracy": "0.610 ± 0.010", "seeds": 3, "collapsed runs": 1},
        {"variant": "c", "accuracy": "0.873 ± 0.075", "seeds": 3, "collapsed runs": 0},
    ]
    assert verdicts == [
        "b minus a: -0.300 test accuracy (3 and 3 seeds; std up to 0.010), larger than the spread over seeds",
        "c minus a: -0.037 test accuracy (3 and 3 seeds; std up to 0.075), within the spread over seeds: "
        "not a difference these runs can show",
    ]
    # explicit pairs, in either direction, and a confidence interval of each mean
    summary, verdicts = chapters.summarize(
        runs, "variant", ["accuracy"], compare={"accuracy": "accuracy"}, pairs=[("a", "c")], ci=True
    )
    assert verdicts == [chapters.difference_note([0.90, 0.91, 0.92], [0.80, 0.95, 0.87], "a", "c", "accuracy")]
    assert verdicts[0].startswith("a minus c: +0.037 accuracy")
    assert summary.loc[0, "accuracy, 95 % CI"] == "[0.885, 0.935]"  # 0.91 ± t(0.975, 2) · 0.01 / √3
    with pytest.raises(chapters.InputError, match=r"no runs of \['d'\] in the 'variant' column"):
        chapters.summarize(runs, "variant", ["accuracy"], compare={"accuracy": "accuracy"}, pairs=[("a", "d")])


def test_summarize_says_one_run_has_no_spread_once_and_never_prints_nan() -> None:
    runs = experiment({"only": [0.41], "three": [0.5, 0.6, 0.7]})
    summary, verdicts = chapters.summarize(
        runs, "variant", ["accuracy"], compare={"accuracy": "accuracy"}, pairs=[("three", "only")], ci=True
    )
    assert summary.to_dict("records")[0] == {
        "variant": "only",
        "accuracy": "0.410",  # its `seeds` says 1 once for the row, not in each cell
        "accuracy, 95 % CI": "needs 2 runs or more",
        "seeds": 1,
        "collapsed runs": 0,
    }
    assert verdicts == [
        "three minus only: +0.190 accuracy (one run each: no spread measured, so no verdict; compare it with "
        "the spread of runs of the same size, or train more seeds)"
    ]
    assert "nan" not in summary.to_string().lower() and "nan" not in " ".join(verdicts).lower()


def test_a_table_says_once_that_one_run_has_no_spread_not_in_each_cell() -> None:
    """The text "(one run: no spread)" filled every cell of the peer's columns; `mean_std(..., alone="")`
    leaves it out of a cell (the table says the runs once, in a `runs` or `seeds` column)."""
    assert chapters.mean_std([0.41]) == "0.410 (one run: no spread)"
    assert chapters.mean_std([0.41], alone="") == "0.410"
    assert chapters.mean_std([0.41, float("nan")], alone="") == "0.410 (1 missing)"
    assert chapters.mean_std([0.4, 0.6], alone="") == "0.500 ± 0.141"


def test_summarize_groups_by_several_columns_and_counts_runs_without_a_collapse_column() -> None:
    runs = experiment({"paper-cnn": [0.5, 0.7], "mini-xception": [0.6, 0.6]}).drop(columns="collapsed")
    runs["params"] = runs["variant"].map({"paper-cnn": 1200, "mini-xception": 56000})
    summary, verdicts = chapters.summarize(runs, ["variant", "params"], ["accuracy"])
    assert summary.to_dict("records") == [
        {"variant": "paper-cnn", "params": 1200, "accuracy": "0.600 ± 0.141", "seeds": 2},
        {"variant": "mini-xception", "params": 56000, "accuracy": "0.600 ± 0.000", "seeds": 2},
    ]
    assert verdicts == []


def test_a_run_on_some_subjects_records_them(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FaceData(subjects=…) trains and tests on those subjects only, and its config.json says which
    subjects each side of the split holds (a reader of the run folder can check there is no leak)."""
    import json

    from toy_data import make_toy_crops

    from fer_utils.book import artifacts
    from fer_utils.data.manifest import load_manifest
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    crops = tmp_path / "crops"
    make_toy_crops(crops, size=16, frames_per_clip=1)
    chosen = sorted(load_manifest(crops)["subject"].unique())[:6]
    config = TrainConfig.preset("reference", image_size=(16, 16), epochs=1, protocol="subject")
    run_dir = artifacts.train(None, FaceData(crops, subjects=chosen), config)
    sides = json.loads((run_dir / "config.json").read_text())["subjects"]
    assert sorted(set().union(*sides.values())) == chosen
    assert not set(sides["train"]) & set(sides["test"])


@pytest.mark.slow
def test_a_chapters_edited_builder_drives_its_run_in_a_real_kernel(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The code chapter 5 shows (`_inputs`, `build_paper_cnn`, from the package), copied into a notebook and run by papermill:
    as shipped it gets the same cached run as the package's builder; edited (fc with 8 units) it trains a
    new run whose model has the edited layer."""
    import inspect
    import json

    import nbformat
    import papermill
    from toy_data import make_toy_crops

    from fer_utils.book import artifacts
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    crops = tmp_path / "crops"
    make_toy_crops(crops, size=16, frames_per_clip=1)
    settings = dict(image_size=(16, 16), epochs=1, patience=1)
    package_run = artifacts.train(None, FaceData(crops), TrainConfig.preset("reference", **settings))
    from fer_utils.models import networks

    shown = inspect.getsource(networks._inputs) + "\n\n" + inspect.getsource(networks.build_paper_cnn)

    def execute(source: str) -> Path:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [
            nbformat.v4.new_code_cell(  # the package's imports, as the chapter's import cell gives them
                "import fer_utils.models.networks as m\nglobals().update({k: v for k, v in vars(m).items() if k[0] != '_'})"
            ),
            nbformat.v4.new_code_cell(source),
            nbformat.v4.new_code_cell(
                "from fer_utils.book import artifacts\n"
                "from fer_utils.train.pipeline import FaceData\n"
                "from fer_utils.train.config import TrainConfig\n"
                f"config = TrainConfig.preset('reference', **{settings!r})\n"
                f"run_dir = artifacts.train(build_paper_cnn, FaceData({str(crops)!r}), config)\n"
                "print('RUN', run_dir)"
            ),
        ]
        path = tmp_path / "chapter.ipynb"
        nbformat.write(notebook, path)
        done = papermill.execute_notebook(
            str(path), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False
        )
        text = "".join(o.get("text", "") for o in done.cells[-1].outputs)
        return Path(text.split("RUN ", 1)[1].strip())

    assert execute(shown) == package_run
    edited = shown.replace("units: int = PAPER_UNITS,", "units: int = 8,")
    assert edited != shown
    edited_run = execute(edited)
    assert edited_run != package_run
    model = json.loads((edited_run / "config.json").read_text())
    from fer_utils.models.networks import load_model

    assert load_model(edited_run / "model.keras").get_layer("fc").units == 8 and model["epochs"] == 1


def test_index_table_counts_each_sets_files_subjects_emotions_and_rejections() -> None:
    """The shipped London faces (204 photographs of 102 people, neutral and smiling) as chapter 9 lists them."""
    from fer_utils.assets import london_faces_dir
    from fer_utils.data.indexing import index_dataset

    london = index_dataset("folder", london_faces_dir(), subject_pattern=r"^(\d+)_")
    table = chapters.index_table({"London faces": london})
    assert table.to_dict("records") == [
        {"set": "London faces", "files": 204, "subjects": 102, "emotions": "happy, neutral", "rejected": 0}
    ]


def test_the_guessing_ceiling_is_where_guessing_stops_on_that_many_faces() -> None:
    """Chapter 9's transfer row: an accuracy under `guessing_ceiling` is one guessing reaches on 204 faces."""
    rng = np.random.default_rng(0)
    for chance in (1 / 8, 1 / 2):
        guesses = rng.binomial(204, chance, size=20_000) / 204
        ceiling = chapters.guessing_ceiling(chance, 204)
        assert np.mean(guesses > ceiling) == pytest.approx(0.025, abs=0.01), chance
    assert chapters.guessing_ceiling(0.125, 204) == pytest.approx(0.170, abs=1e-3)
    assert chapters.guessing_ceiling(0.125, 2040) < chapters.guessing_ceiling(0.125, 204)


def test_the_bootstrap_interval_includes_the_test_sets_own_noise() -> None:
    """Chapter 9: five seeds that agree exactly have no spread, so Student's t over them gives an
    interval of width 0; on 42 test faces of 21 people at 0.8 one test set alone is worth about ±0.12."""
    faces = pd.DataFrame({"group": np.repeat(np.arange(21), 2), "correct": np.arange(42) % 5 != 0})
    low, high = chapters.bootstrap_interval([faces] * 5)
    t_low, t_high = chapters.confidence_interval([faces["correct"].mean()] * 5)
    assert t_high - t_low == pytest.approx(0.0)
    assert low < faces["correct"].mean() < high
    assert 0.05 < high - low < 0.15  # five test sets of 42 faces: about the binomial's 0.24 / sqrt(5)
    one_low, one_high = chapters.bootstrap_interval([faces])
    assert 0.15 < one_high - one_low < 0.35  # one test set of 42 faces at 0.8: the binomial's 95 % range, about 0.24
    perfect = faces.assign(correct=True)
    assert chapters.bootstrap_interval([perfect] * 3) == (1.0, 1.0)
    with pytest.raises(ValueError, match="at least one run"):
        chapters.bootstrap_interval([])


def test_beyond_spread_is_the_number_behind_the_verdict() -> None:
    """A difference is shown when it exceeds the larger std over seeds; the sentence and the number agree."""
    a, b = [0.90, 0.92, 0.94], [0.50, 0.60, 0.70]
    assert chapters.beyond_spread(a, b) == pytest.approx(0.32 - 0.1)
    assert "larger than the spread" in chapters.difference_note(a, b, "a", "b", "accuracy")
    close = [0.52, 0.62, 0.72]
    assert chapters.beyond_spread(close, b) < 0
    assert "within the spread" in chapters.difference_note(close, b, "c", "b", "accuracy")


def test_a_single_value_has_no_spread_so_a_baseline_is_judged_by_the_runs_spread_alone() -> None:
    """`seed_spread` is the larger std of the groups with 2+ values; one value (a baseline, one run) adds none."""
    runs, baseline = [0.30, 0.40, 0.50], [0.32]
    assert chapters.seed_spread(runs, baseline) == pytest.approx(0.1)
    assert chapters.seed_spread([0.5], [0.7]) == 0.0
    assert chapters.beyond_spread(runs, baseline) == pytest.approx(0.40 - 0.32 - 0.1)  # not above beyond spread
    assert chapters.beyond_spread(baseline, runs) == pytest.approx(0.32 - 0.40 - 0.1)
    assert chapters.beyond_spread([0.9], runs) == pytest.approx(0.9 - 0.4 - 0.1)


def test_the_verdict_sentence_follows_the_number_in_both_directions() -> None:
    """`difference_note` calls a difference larger than the spread exactly when `beyond_spread` is positive
    one way or the other, whichever setting is higher."""
    low, high = [0.50, 0.60, 0.70], [0.85, 0.90, 0.95]
    for a, b in ((high, low), (low, high)):
        assert max(chapters.beyond_spread(a, b), chapters.beyond_spread(b, a)) > 0
        assert "larger than the spread" in chapters.difference_note(a, b, "a", "b", "accuracy")
    near = [0.55, 0.65, 0.75]
    assert max(chapters.beyond_spread(near, low), chapters.beyond_spread(low, near)) < 0
    assert "within the spread" in chapters.difference_note(low, near, "a", "b", "accuracy")


def test_the_reference_preset_is_the_one_definition_of_the_reference_settings() -> None:
    """Chapters 3, 4, 8 and 9 share one cached reference run through this preset and these defaults."""
    from fer_utils.train.config import PRESETS, REFERENCE_EPOCHS, REFERENCE_SIZE, TrainConfig

    reference = TrainConfig.preset("reference")
    assert reference.image_size == (REFERENCE_SIZE, REFERENCE_SIZE) and reference.epochs == REFERENCE_EPOCHS
    assert set(PRESETS["reference"]) == {"image_size", "epochs", "patience"}
