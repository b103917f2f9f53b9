"""The exercises of chapters 2 and 4 to 10 that are no experiment, graded by otter in the grader's sandbox:
each book stub and solution (read from the chapter, not copied) in one small chapter whose setup cells make,
on real files shipped with the book, the names the stubs read (the RAVDESS clip and stills, the London faces,
toy crops of the stills, a short run trained once and read from the cache). The solutions get full marks;
a plausible mistake planted in each exercise fails with the message its checker gives that mistake."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from test_experiment_exercises import EXPERIMENT_CHAPTERS
from toy_data import make_toy_crops

from fer_book.assign import assign_chapter, exercise_cells, is_solution, split_call
from fer_book.assign import source as cell_source
from fer_book.grade import grade_folder
from fer_utils.assets import london_faces_dir
from fer_utils.book import artifacts, realfaces
from fer_utils.train.config import TrainConfig
from fer_utils.train.pipeline import FaceData

CHAPTERS = ("02_preprocessing", *EXPERIMENT_CHAPTERS)  # every chapter whose other exercises otter grades here
SIDE = 32  # the short run's input; the toy crops are 48 px
REFERENCE = TrainConfig(image_size=(SIDE, SIDE), epochs=2, patience=2, protocol="subject")
SEEDS = [0, 1]  # chapter 9's `results`: the short run over two seeds (seed 0 is the reference run)
DETECTOR = "opencv-haar"  # the real faces cut as fast as the package can
LONDON_PEOPLE = 16  # the first people of the London set, each neutral and smiling (the set has 102)

# What each chapter defines before its exercises, made small; after the chapter's own import cell. The paths
# are filled in by `chapter_cells`; every run is one `cached` trained, found in the read-only cache.
SETUP = {
    "02_preprocessing": """
clip = {{"path": fer.ravdess_clip_path()}}  # the real RAVDESS clip shipped with the package
detectors = {{"dlib-hog": fer.make_detector("dlib-hog")}}
""",
    "04_training": """
crops = Path({crops!r})
reference = fer.TrainConfig(image_size=({side}, {side}), epochs=2, patience=2, protocol="subject")
run = fer.train(None, fer.FaceData(crops), reference)
test, probabilities, classes = run.test_predictions()
matrix = fer.confusion(test["emotion"], fer.predicted_labels(probabilities, classes), classes)
""",
    "05_regularization": """
IMAGE_SIZE = {side}
baseline = run.history()
frames = fer.usable_frames(fer.load_manifest(crops))
probe = fer.load_images(frames.sample(48, random_state=0), crops, (IMAGE_SIZE, IMAGE_SIZE))
""",
    "06_evaluation_protocols": """
splits = {{
    protocol: fer.split_frames(frames, protocol, reference.test_size, reference.val_size, seed=0)
    for protocol in ("random", "subject")
}}
""",
    "07_comparison": """
models = {{
    name: fer.build_model(name, classes, shape)
    for name, shape, classes in [
        ("paper-cnn", (48, 48, 1), 8),
        ("mini-xception", (48, 48, 1), 7),
        ("mobilenet-v2", (64, 64, 3), 8),
    ]
}}
catalogue = pd.DataFrame(
    [
        {{"model": name, "params": fer.count_params(fer.build_model(name, classes, shape))}}
        for name in ("paper-cnn", "resnet50")
        for shape, classes in [fer.CANONICAL_INPUTS[name]]
    ]
)
paper_cnn = catalogue.set_index("model").loc["paper-cnn", "params"]
""",
    "08_deployment": """
model = run.load()
test_images = fer.load_images(test, crops, ({side}, {side}))
representative = fer.load_images(frames.sample(50, random_state=0), crops, ({side}, {side}))
blobs = {{"float32": fer.to_tflite(model, "float32", representative)}}
index = int(probabilities.max(1).argmax())  # the test frame the run is surest of
face = test_images[index]
""",
    "09_real_faces": """
ref_model, ref_classes = run.load(), run.classes()
london_crops = Path({london!r})
london = fer.usable_frames(fer.load_manifest(london_crops))
known = london[london["emotion"].isin(ref_classes)].reset_index(drop=True)
probabilities = fer.predict_batches(
    ref_model, fer.make_dataset(known, london_crops, ref_classes, fer.Feed(image_size=({side}, {side})))
)
results = fer.train_variants(None, fer.FaceData(crops), reference, {{"subject": {{"protocol": "subject"}}}}, {seeds!r})
""",
    "10_seven_expressions": """
sets = {{
    name: fer.realfaces.RealSet(name, folder, fer.usable_frames(fer.load_manifest(folder)).reset_index(drop=True))
    for name, folder in [("London faces", london_crops), ("RAVDESS stills", Path({stills!r}))]
}}
first = fer.realfaces.predict_real(run.load(), run.classes(), sets)
""",
}

# A plausible mistake per exercise, written after the book's stub in the answer cell (a function defined again
# replaces the stub's), by (chapter, its exercise number).
PLANTED = {
    ("02_preprocessing", 1): """
def sample_indices(n_frames, k):  # k equal steps that never reach the last frame
    return list(range(n_frames)) if n_frames <= k else [i * n_frames // k for i in range(k)]
""",
    ("02_preprocessing", 2): """
def crop_inside(image, box, side=fer.PAPER_SIDE, margin=fer.DEFAULT_MARGIN):  # the chapter's padded crop
    return fer.crop_face(image, box, side=side, margin=margin)
""",
    ("04_training", 1): "answer = matrix.to_numpy().trace()  # the count of right frames, not their share\n",
    ("04_training", 2): """
def majority_vote(frames, predicted):  # grouped by actor, not by clip
    table = frames.assign(predicted=list(predicted))
    return {subject: group["predicted"].mode().iloc[0] for subject, group in table.groupby("subject")}
""",
    ("05_regularization", 1): (
        "answer = baseline['accuracy'].iloc[-1] - baseline['val_accuracy'].iloc[-1]  # Keras's logged accuracy\n"
    ),
    ("05_regularization", 2): """
def two_stage_cnn(l1):  # an L2 penalty where L1 is asked
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1))
    x = layers.Rescaling(1.0 / 255)(inputs)
    for filters in (16, 64):
        x = layers.MaxPooling2D(2)(layers.Conv2D(filters, 3, padding="same", activation="relu")(x))
    x = layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(l1), name="fc")(
        layers.Flatten()(x)
    )
    return keras.Model(inputs, layers.Dense(len(classes), activation="softmax")(x))
""",
    ("06_evaluation_protocols", 1): (
        'answer = len(set(splits["random"].train["clip_id"]) & set(splits["random"].test["clip_id"]))\n'
    ),
    ("06_evaluation_protocols", 2): """
def subject_split(frames, n_test, seed):  # the first actors, whatever the seed
    is_test = frames["subject"].isin(sorted(frames["subject"].unique())[:n_test])
    return fer.Split(train=frames[~is_test], test=frames[is_test])
""",
    ("07_comparison", 1): 'answer = paper_cnn / catalogue.set_index("model").loc["resnet50", "params"]\n',
    ("07_comparison", 2): """
def conv_flops(layer):  # multiply-accumulates, without the factor 2
    return fer.layer_macs(layer)
""",
    ("08_deployment", 1): """
def to_int8(model, images):  # the chapter's own int8 mode: unsigned int8 in and out
    return fer.to_tflite(model, "int8", images)
""",
    ("08_deployment", 2): """
def occlusion_map(model, image, class_index, patch=8):  # the squares covered with black
    image = np.asarray(image, dtype=np.float32)
    rows, cols = image.shape[0] // patch, image.shape[1] // patch
    covered = []
    for r in range(rows):
        for c in range(cols):
            copy = image.copy()
            copy[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = 0
            covered.append(copy)
    p = model.predict(np.stack([image, *covered]), verbose=0)[:, class_index]
    return (p[0] - p[1:]).reshape(rows, cols)
""",
    ("09_real_faces", 1): """
def confidence_interval(values):  # the normal quantile instead of Student's t
    values = np.asarray(values, dtype=float)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean() - half, values.mean() + half
""",
    ("09_real_faces", 2): """
def restricted_accuracy(probabilities, classes, truth, allowed):  # the arg-max over every class
    choice = np.asarray(classes)[np.asarray(probabilities).argmax(1)]
    return float(np.mean(choice == np.asarray(truth)))
""",
    ("10_seven_expressions", 1): """
def macro_f1_present(truth, predicted):  # averaged over the classes predicted too
    labels = sorted(set(truth) | set(predicted))
    return float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))
""",
    ("10_seven_expressions", 2): """
def majority_baseline(truth):  # the share of the rarest value
    return float(pd.Series(list(truth)).value_counts(normalize=True).iloc[-1])
""",
}


def book_exercises(chapter: str, repo_root: Path) -> tuple[str, list[tuple[int, str, str]]]:
    """(the chapter's import cell, (number, stub, solution) of each exercise that is no experiment)."""
    notebook = json.loads((repo_root / "notebooks" / f"{chapter}.ipynb").read_text())
    cells = notebook["cells"]
    imports = next(cell_source(c) for c in cells if c["cell_type"] == "code" and "book.kit import" in cell_source(c))
    found = []
    for number, index in exercise_cells(notebook).items():
        stub = cell_source(cells[index])
        if "check_experiment" not in stub:
            solution = next(c for c in cells[index + 1 :] if c["cell_type"] == "code" and is_solution(c))
            found.append((number, stub, cell_source(solution)))
    return imports, found


def code(text: str, *tags: str) -> dict:
    metadata = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": text}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def chapter_cells(book: dict, paths: dict[str, str]) -> tuple[list[dict], dict[int, tuple[str, int, str]]]:
    """The small chapter's cells (each chapter's setup, then its exercises, numbered 1, 2, … across chapters)
    and, by that number, (the book chapter, its exercise number, the stub)."""
    cells, where = [markdown("# The exercises of chapters 2 and 4 to 10")], {}
    for chapter, (imports, exercises) in book.items():
        setup = SETUP[chapter].format(side=SIDE, seeds=SEEDS, **paths)
        cells += [markdown(f"## {chapter}"), code(f"{imports.rstrip()}\n{setup}")]
        for number, stub, solution in exercises:
            where[len(where) + 1] = (chapter, number, stub)
            heading = f"### Exercise {len(where)}\n\n{chapter}, exercise {number}."
            cells += [markdown(heading), code(stub), code(solution, "solution", "hide-cell")]
    return cells, where


def planted_answer(chapter: str, number: int, stub: str) -> str:
    """The answer cell with the planted mistake: the book's stub (without its checker call), then the mistake."""
    return f"{split_call(stub, chapter)[0].rstrip()}\n\n{PLANTED[chapter, number].strip()}\n"


def expected_messages(book: dict, paths: dict[str, str]) -> dict[int, str]:
    """The checker's message on each planted mistake, by exercise number: the small chapter run here with the
    planted answers (the same setup, the same cached runs), each checker called as the chapter calls it."""
    scope: dict = {}
    messages = {}
    for chapter, (imports, exercises) in book.items():
        exec(f"{imports.rstrip()}\n{SETUP[chapter].format(side=SIDE, seeds=SEEDS, **paths)}", scope)
        assert scope.get("reference", REFERENCE) == REFERENCE  # the run `cached` trained: grading trains none
        for number, stub, _ in exercises:
            exec(planted_answer(chapter, number, stub), scope)
            verdict = eval(split_call(stub, chapter)[1], scope)
            assert not verdict.ok, (chapter, number, verdict.message)  # the mistake is one here
            messages[len(messages) + 1] = verdict.message
    return messages


def london_subset(folder: Path) -> Path:
    """The first LONDON_PEOPLE people of the London faces shipped with the book, as its folders of classes."""
    for emotion in ("neutral", "smiling"):
        (folder / emotion).mkdir(parents=True)
        for photo in sorted((london_faces_dir() / emotion).glob("*.jpg"))[:LONDON_PEOPLE]:
            shutil.copy2(photo, folder / emotion / photo.name)
    return folder


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(a cache folder, the real files the setup reads, made once in it): toy crops of the stills, the short
    runs trained on them, some of the London faces and the RAVDESS stills cut by the package's preprocessing. The
    sandbox sees the cache read-only: grading trains and cuts nothing."""
    cache = tmp_path_factory.mktemp("cache")
    cache.chmod(0o755)  # as a user's cache folder is: the sandboxed student (another user) may read it
    crops = cache / "toy_crops"
    make_toy_crops(crops, size=48, frames_per_clip=2)
    for seed in SEEDS:  # chapter 9's `train_variants` over SEEDS, trained here in this cache
        artifacts.train(None, FaceData(crops), replace(REFERENCE, seed=seed), cache=cache)
    cut = {
        "london": (london_subset(cache / "london_faces"), realfaces.LONDON_PATTERN),
        "stills": (realfaces.stills_folder(cache), realfaces.STILLS_PATTERN),
    }
    paths = {
        name: str(
            artifacts.Dataset("folder", root).crops(
                cache, detector=DETECTOR, side=48, workers=1, subject_pattern=pattern
            )
        )
        for name, (root, pattern) in cut.items()
    }
    return cache, {"crops": str(crops), **paths}


@pytest.mark.slow
def test_every_chapters_exercises_are_graded_by_otter_full_marks_and_each_planted_mistake_with_its_message(
    repo_root: Path,
    cached: tuple[Path, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sixteen exercises of chapters 2 and 4 to 10 that are no experiment, as one otter assignment
    (`fer_book assign`), graded by `fer_book grade` (otter run in bubblewrap): the solutions pass every one;
    the planted mistakes fail each with the message the same checker gives the same wrong answer here."""
    cache, paths = cached
    monkeypatch.setenv("FER_CACHE", str(cache))
    book = {chapter: book_exercises(chapter, repo_root) for chapter in CHAPTERS}
    found = {(chapter, number) for chapter, (_, exercises) in book.items() for number, _, _ in exercises}
    assert found == set(PLANTED), f"each exercise needs its planted mistake in PLANTED: {found ^ set(PLANTED)}"
    cells, where = chapter_cells(book, paths)
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    root = tmp_path / "book"
    (root / "nb").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: nb/02_exercises\n")
    chapter = root / "nb" / "02_exercises.ipynb"
    chapter.write_text(
        json.dumps({"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5})
    )
    done = assign_chapter(chapter, tmp_path / "assign")
    assert done.questions == len(where) == 16

    student = json.loads(done.student.read_text())
    answers = exercise_cells(student)
    assert sorted(answers) == sorted(where)
    for number, (book_chapter, own, stub) in where.items():
        student["cells"][answers[number]]["source"] = planted_answer(book_chapter, own, stub)
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ada.ipynb").write_text((done.autograder.parent / done.student.name).read_text())  # the solutions
    (subs / "bob.ipynb").write_text(json.dumps(student))
    trained = sorted(p.name for p in (cache / "runs").iterdir() if not p.name.startswith("."))
    expected = expected_messages(book, paths)
    # the setup read the two runs `cached` trained, as the sandbox's kernels do (their cache is read-only)
    assert len(trained) == len(SEEDS) and trained == sorted(
        p.name for p in (cache / "runs").iterdir() if not p.name.startswith(".")
    )

    grades, _, _ = grade_folder(subs, "02", tmp_path / "grades.csv", done.autograder, timeout_s=600, root=root)
    rows = {(r.student, r.exercise): (r.status, r.message) for r in grades.itertuples()}
    assert {n: rows["ada", n] for n in where} == {n: ("passed", "all tests passed") for n in where}
    assert {n: rows["bob", n] for n in where} == {n: ("failed", expected[n]) for n in where}
