"""The crop spec (issue 37): said once, written beside the crops, copied into every run, read by all that cut.

How a face becomes a model's input (detector, margin, side, alignment, colour) is one `CropSpec`: the
preprocessing run writes it beside its crops, training copies it into the run folder, and the recognizer of a
run reads it from there. No other place states a crop margin: a test reads the package and the demo page's
code for one. Folders made before the spec existed still load: their older records are read into a spec, and
a run whose model took its own side only is served through the model's resizer, as training fed it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
from toy_data import TOY_CLASSES, make_toy_crops

from fer_utils.deploy.inference import Recognizer
from fer_utils.errors import CropError, PredictionError
from fer_utils.faces.crop_spec import (
    CROP_SPEC_FILE,
    CropSpec,
    check_crop_spec,
    default_margin,
    read_crop_spec,
    served_spec,
    spec_from_settings,
    spec_with,
    write_crop_spec,
)
from fer_utils.registry import DEFAULT_MARGIN, NO_DETECTOR

REPO = Path(__file__).resolve().parents[1]
SPEC_MODULE = REPO / "fer_utils" / "faces" / "crop_spec.py"
# Where the default margin is named: the registry imports nothing, so the CLI's help shows it for free; the
# spec's default is that name, and everything else reads a spec.
DEFAULT_MARGIN_LINE = "DEFAULT_MARGIN = 0.1  # around the face box, as a fraction of its side"
# A margin literal that is not a crop's: chapter 2's exercise checks a reader's crop function at a margin of
# its own (not the book's, so that a crop hard-coded to the default fails).
NOT_A_CROPS_MARGIN = {("fer_utils/book/exercises/ch02.py", "check_crop_inside")}
JS_MARGIN = re.compile(r"margin\s*[:=]\s*-?\.?\d", re.IGNORECASE)  # a name ending in "margin" set to a number


# --- the spec itself ---------------------------------------------------------------------------------------


def test_the_defaults_are_the_registrys_and_the_spec_round_trips(tmp_path: Path) -> None:
    spec = CropSpec()
    assert (spec.margin, spec.colour, spec.align) == (DEFAULT_MARGIN, "gray", False)
    assert read_crop_spec(tmp_path) is None
    path = write_crop_spec(tmp_path, CropSpec(detector="opencv-haar", margin=0.25, side=96, align=True))
    assert path == tmp_path / CROP_SPEC_FILE
    assert read_crop_spec(tmp_path) == CropSpec(detector="opencv-haar", margin=0.25, side=96, align=True)
    before = path.stat().st_mtime_ns
    write_crop_spec(tmp_path, read_crop_spec(tmp_path))  # the same spec: the file is left alone
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("detector", "mtcnn", "unknown detector"),
        ("margin", 1.5, "margin must be between 0 and 1"),
        ("margin", True, "margin must be between 0 and 1"),
        ("side", 4, "at least 8 pixels"),
        ("side", 96.0, "at least 8 pixels"),
        ("side", 100000, "at most 1024 pixels"),  # issue 47: it ran out of memory
        ("colour", "rgb", "unknown crop colour"),
    ],
)
def test_a_spec_that_cannot_work_is_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(CropError, match=message):
        check_crop_spec(CropSpec(**{field: value}))


def test_a_damaged_spec_file_is_a_crop_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / CROP_SPEC_FILE).write_text('{"margin": 0.1}')
    with pytest.raises(CropError, match=f"{CROP_SPEC_FILE}.*exactly the fields"):
        read_crop_spec(tmp_path)
    (tmp_path / CROP_SPEC_FILE).write_text("{not json")
    with pytest.raises(CropError, match="not valid JSON"):
        read_crop_spec(tmp_path)


def test_a_spec_made_without_a_margin_takes_its_detectors_default() -> None:
    """Issue 45: `CropSpec()`'s margin was 0.1 whatever its detector, and the CLI alone applied `default_margin`
    (0 for whole images), so the API and the book cut whole images with a margin the CLI did not. The spec
    itself decides it now, for every caller; a margin given is kept; the CLI's options and the book's keywords
    give None for what they leave to the spec (`spec_with`), and a model of whole images is served through a face
    detector with the default margin (`served_spec`: the recognizer's default and the page's)."""
    assert CropSpec(detector=NO_DETECTOR).margin == 0.0 == default_margin(NO_DETECTOR)
    assert CropSpec(detector="opencv-haar").margin == DEFAULT_MARGIN == CropSpec().margin
    assert CropSpec(detector=NO_DETECTOR, margin=0.2).margin == 0.2
    assert spec_with(detector=NO_DETECTOR, margin=None, side=None) == CropSpec(detector=NO_DETECTOR)
    assert spec_with(side=48) == CropSpec(side=48)
    assert served_spec(CropSpec(detector=NO_DETECTOR, side=96)) == CropSpec(side=96)
    kept = CropSpec(detector="opencv-haar", margin=0.3)
    assert served_spec(kept) == kept
    assert spec_from_settings({"detector": NO_DETECTOR, "size": 48}).margin == 0.0  # a record without a margin


def test_whole_images_have_no_margin_and_are_served_with_the_default_one() -> None:
    """A crop of a whole image (detector none) has no margin by default; served through a face detector, it gets
    the default margin, since how much of a whole image lies around its face is not known."""
    assert default_margin(NO_DETECTOR) == 0.0 and default_margin("dlib-hog") == DEFAULT_MARGIN
    whole = CropSpec(detector=NO_DETECTOR, margin=0.0, side=96)
    assert whole.served_with("dlib-hog") == CropSpec(detector="dlib-hog", margin=DEFAULT_MARGIN, side=96)
    assert CropSpec(margin=0.3).served_with("opencv-haar").margin == 0.3


def test_older_records_are_read_into_a_spec_or_say_what_is_missing() -> None:
    settings = {"detector": "dlib-hog", "size": 180, "margin": 0.2, "align": False, "frames": 6, "version": 2}
    assert spec_from_settings(settings) == CropSpec(margin=0.2, side=180)
    assert spec_from_settings({"detector": "dlib-hog", "margin": 0.2, "align": False}, side=48).side == 48
    with pytest.raises(CropError, match="does not say their side"):
        spec_from_settings({"detector": "dlib-hog", "margin": 0.2})


# --- no margin stated outside the spec --------------------------------------------------------------------


def _margin_named(node: ast.AST) -> bool:
    """A name or attribute that is a margin: it ends in "margin" (`margin`, `DEFAULT_MARGIN`, `self.margin`;
    not e.g. `FACE_SCALE_MARGIN_LEVELS`, a number of pyramid levels)."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.lower().endswith("margin")


def _number(node: ast.AST | None) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def margin_literals(source: str) -> list[tuple[int, str]]:
    """(line, enclosing function) of every number the code states as a crop margin: assigned to, compared with,
    passed as or defaulting a name ending in "margin", keyed "margin" in a dict, or returned by a function
    whose name holds "margin"."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            found.extend((d.lineno, node.name) for a, d in pairs if a.arg.lower().endswith("margin") and _number(d))
            for child in node.body:
                visit(child, node.name)
            return
        stated = (
            (
                isinstance(node, (ast.Assign, ast.AnnAssign))
                and _number(node.value)
                and any(_margin_named(t) for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
            )
            or (isinstance(node, ast.keyword) and (node.arg or "").lower().endswith("margin") and _number(node.value))
            or (
                isinstance(node, ast.Compare)
                and any(map(_margin_named, [node.left, *node.comparators]))
                and any(map(_number, [node.left, *node.comparators]))
            )
            or (
                isinstance(node, ast.Dict)
                and any(
                    isinstance(k, ast.Constant) and k.value == "margin" and _number(v)
                    for k, v in zip(node.keys, node.values)
                )
            )
            or (
                isinstance(node, ast.Return)
                and "margin" in function.lower()
                and node.value is not None
                and any(_number(n) for n in ast.walk(node.value))
            )
        )
        if stated:
            found.append((node.lineno, function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "")
    return found


def test_the_scanner_sees_a_margin_stated_in_each_way() -> None:
    """The code check below must be able to fail: each way of stating a margin is seen, formulas are not."""
    stated = [
        "MARGIN = 0.1",
        "crop_face(image, box, margin=0.2)",
        "def crop(image, margin=0.1): pass",
        "def crop(image, *, margin: float = 0.1): pass",
        "spec = {'margin': 0.1}",
        "if margin > 0.5: pass",
        "def margin_for(d): return 0.0 if d == 'none' else M",
        "self.margin = -0.1",
    ]
    assert all(margin_literals(code) for code in stated), [c for c in stated if not margin_literals(c)]
    formulas = ["side = w * (1 + 2 * margin)", "crop_face(image, box, margin=spec.margin)", "MARGIN_LEVELS = 2"]
    assert not any(margin_literals(code) for code in formulas)
    assert JS_MARGIN.search("const MARGIN = 0.1;") and JS_MARGIN.search("{margin: 0.1}")
    assert not JS_MARGIN.search("Math.max(box.w, box.h) * (1.0 + 2.0 * margin)") and not JS_MARGIN.search(
        "marginLevels = 2"
    )


def test_no_crop_margin_is_stated_outside_the_spec_module() -> None:
    """Issue 37: the margin lived in preprocessing's settings, a run's config, `RunFolder.crop_margin`,
    `Recognizer(margin=)`'s default and the page's `MARGIN = 0.1`. Only the registry names the default now (once),
    the spec module uses it, and the rest reads a spec; the page included."""
    stated = []
    for path in sorted([*(REPO / "fer_utils").rglob("*.py"), *(REPO / "fer_book").rglob("*.py")]):
        if path == SPEC_MODULE:
            continue
        relative = path.relative_to(REPO).as_posix()
        text = path.read_text(encoding="utf-8")
        for line, function in margin_literals(text):
            source = text.splitlines()[line - 1].strip()
            if (relative, function) not in NOT_A_CROPS_MARGIN and source != DEFAULT_MARGIN_LINE:
                stated.append(f"{relative}:{line}: {source}")
    for path in sorted((REPO / "book" / "_demo").glob("*.js")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if JS_MARGIN.search(line):
                stated.append(f"{path.relative_to(REPO).as_posix()}:{number}: {line.strip()}")
    assert not stated, "crop margins stated outside fer_utils/faces/crop_spec.py:\n" + "\n".join(stated)
    registry = (REPO / "fer_utils" / "registry.py").read_text(encoding="utf-8")
    assert registry.count(DEFAULT_MARGIN_LINE) == 1 and len(margin_literals(registry)) == 1


# --- no crop side stated outside the spec ------------------------------------------------------------------

# The functions that cut (or describe) a crop: a number passed to them as `size` is a crop's side.
CUTTERS = {"crop_face", "spec_crop", "largest_face_crop", "preprocess_dataset", "process_clip", "Settings", "crops"}
SIDE_NAMES = ("side", "crop_side", "crop_size")  # keywords, parameters and keys that always mean a crop's side
# Sides that are named facts, not a crop spec's: the default (named once, the spec's default), the sides some
# datasets and the peer model come at, and the limits of what a detector or a model can take. A new name
# ending in "side" that states a number must be added here with its reason, or read a spec.
NAMED_SIDES = {
    ("fer_utils/registry.py", "PAPER_SIDE"): "the default side, named once: CropSpec's default",
    ("fer_utils/book/artifacts.py", "GENERATED_SIDE"): "the side the generated faces are shipped at",
    ("fer_utils/data/fer2013.py", "FER2013_SIDE"): "FER-2013's faces are 48×48",
    ("fer_utils/models/peer.py", "PEER_SIDE"): "the peer model's fixed input",
    ("fer_utils/registry.py", "WILD_SIDE"): "the book's network's input (its resizer's side), FER-2013's 48",
    ("fer_utils/faces/detectors.py", "MIN_DETECTION_SIDE"): "a detector's search copy",
    ("fer_utils/faces/detectors.py", "MIN_FACE_SIDE"): "the smallest face a detector finds",
    ("fer_utils/data/manifest.py", "CROP_LIKE_SIDE"): "a threshold to guess an image is a crop already",
    ("fer_utils/faces/preprocess_clip.py", "MIN_IMAGE_SIDE"): "a threshold for bad images",
    ("fer_utils/registry.py", "MAX_SIDE"): "the largest --size the CLI and a crop spec accept",
    ("fer_book/calibrate.py", "IMAGE_SIDE"): "the calibration's random images, no face crops",
}
JS_SIDE = re.compile(r"\b(?:crop_?)?(?:side|size)\s*[:=]\s*\d", re.IGNORECASE)  # `side = 180`, `{side: 32}`


def _call_name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")


def _sized(node: ast.AST | None) -> bool:
    """A number, or a tuple holding one (`(180, 180)`)."""
    return _number(node) or (isinstance(node, ast.Tuple) and any(map(_number, node.elts)))


def _crop_side(node: ast.AST) -> bool:
    """A crop's side read from a name: `side`, or the `side`/`size` of a spec or preprocessing settings."""
    if isinstance(node, ast.Name):
        return node.id in SIDE_NAMES
    owner = getattr(getattr(node, "value", None), "id", "")
    return isinstance(node, ast.Attribute) and node.attr in ("side", "size") and owner in ("spec", "settings")


def side_literals(source: str) -> list[tuple[int, str]]:
    """(line, name) of every number the code states as a crop's side: passed as `side` (or `size` to a function
    that cuts crops, `CUTTERS`), defaulting such a parameter, keyed "side" in a dict, compared with a spec's
    or the settings' side (`settings.size < 8`: the smallest side is the spec's `MIN_SIDE`), or assigned to a name
    ending in "side" (the name is returned: `NAMED_SIDES` holds those that are facts, not a spec's)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            cutter = node.name in CUTTERS
            found += [
                (d.lineno, a.arg) for a, d in pairs if (a.arg in SIDE_NAMES or cutter and a.arg == "size") and _sized(d)
            ]
        elif isinstance(node, ast.Call):
            cutter = _call_name(node) in CUTTERS
            found += [
                (k.value.lineno, k.arg)
                for k in node.keywords
                if (k.arg in SIDE_NAMES or cutter and k.arg == "size") and _sized(k.value)
            ]
        elif isinstance(node, ast.Dict):
            found += [
                (v.lineno, k.value)
                for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant) and k.value == "side" and _sized(v)
            ]
        elif isinstance(node, ast.Compare) and any(map(_number, [node.left, *node.comparators])):
            found += [(node.lineno, "compared") for n in [node.left, *node.comparators] if _crop_side(n)][:1]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and _sized(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [(node.lineno, t.id) for t in targets if isinstance(t, ast.Name) and t.id.lower().endswith("side")]
    return found


def test_the_side_scanner_sees_a_side_stated_in_each_way() -> None:
    """The code check below must be able to fail: each way of stating a crop side is seen; other sizes are not."""
    stated = [
        "SIDE = 180",
        "crop_side = 48",
        "crop_face(image, box, size=180, margin=m)",
        "preprocess_dataset(clips, out, size=(180, 180))",
        "CropSpec(side=32)",
        "def cut(image, side=180): pass",
        "def crop_face(image, *, size: int = 180): pass",
        "record = {'side': 96}",
        "if settings.size < 8: pass",
    ]
    assert all(side_literals(code) for code in stated), [c for c in stated if not side_literals(c)]
    others = [
        "plt.subplots(figsize=(7, 3))",
        "rng.uniform(0, 1, size=5)",
        "crop_face(image, box, size=spec.side)",
        "if inside.size == 0: pass",
    ]
    assert not any(side_literals(code) for code in others), [c for c in others if side_literals(c)]
    assert JS_SIDE.search("const SIDE = 180;") and JS_SIDE.search("{side: 32, margin}")
    assert not JS_SIDE.search("const DETECTOR_SIZE = 128;") and not JS_SIDE.search(
        "const [h, w] = [spec.side, spec.side];"
    )


def test_no_crop_side_is_stated_outside_the_spec_module() -> None:
    """Issue 37: "no other place states a margin or a side". The package, the book's build scripts and the demo
    page cut crops at the side a spec says; the only numbers named as sides are the default (the registry's,
    CropSpec's default) and the named facts of `NAMED_SIDES`. (Benchmarks and tests state the sides of their
    experiments on purpose and are not read.)"""
    stated = []
    for path in sorted([*(REPO / "fer_utils").rglob("*.py"), *(REPO / "fer_book").rglob("*.py")]):
        if path == SPEC_MODULE:
            continue
        relative = path.relative_to(REPO).as_posix()
        text = path.read_text(encoding="utf-8")
        for line, name in side_literals(text):
            if (relative, name) not in NAMED_SIDES:
                stated.append(f"{relative}:{line}: {text.splitlines()[line - 1].strip()}")
    for path in sorted((REPO / "book" / "_demo").glob("*.js")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if JS_SIDE.search(line):
                stated.append(f"{path.relative_to(REPO).as_posix()}:{number}: {line.strip()}")
    assert not stated, "crop sides stated outside fer_utils/faces/crop_spec.py:\n" + "\n".join(stated)


# --- written by preprocessing, copied by training, read by the recognizer -----------------------------------


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Toy crops (64 px) with their spec."""
    root = tmp_path_factory.mktemp("toy")
    make_toy_crops(root, size=64, frames_per_clip=2)
    return root


def test_preprocessing_writes_the_spec_beside_its_crops_and_start_over_removes_it(tmp_path: Path) -> None:
    from fer_utils.assets import still_paths
    from fer_utils.data.indexing import index_dataset
    from fer_utils.faces.preprocess import preprocess_dataset
    from fer_utils.faces.preprocess_folder import folder_crop_spec, start_over

    src = tmp_path / "src" / "neutral"
    src.mkdir(parents=True)
    for still in still_paths()[:2]:
        (src / still.name).write_bytes(still.read_bytes())
    clips = index_dataset("folder", tmp_path / "src").clips
    out = tmp_path / "crops"
    preprocess_dataset(clips, out, CropSpec(detector="opencv-haar", margin=0.3, side=48), workers=1, progress=False)
    assert read_crop_spec(out) == CropSpec(detector="opencv-haar", margin=0.3, side=48)
    settings = json.loads((out / ".parts" / "settings.json").read_text())
    assert settings["size"] == 48 and settings["margin"] == 0.3 and "crop" not in settings  # the older names
    (out / CROP_SPEC_FILE).unlink()  # a folder preprocessed before the spec existed: its settings say it
    assert folder_crop_spec(out) == CropSpec(detector="opencv-haar", margin=0.3, side=48)
    preprocess_dataset(clips, out, CropSpec(detector="opencv-haar", margin=0.3, side=48), workers=1, progress=False)
    assert read_crop_spec(out) == CropSpec(detector="opencv-haar", margin=0.3, side=48)  # resumed, and written
    start_over(out)
    assert not (out / CROP_SPEC_FILE).exists() and folder_crop_spec(out) is None


@pytest.mark.slow
def test_a_run_copies_its_crops_spec_and_its_recognizer_crops_with_it(toy: Path, tmp_path: Path) -> None:
    """The run folder holds the crops' spec (config.json no longer repeats it); the model takes the crops at their
    side (64) and resizes them itself to the run's 16; the run's recognizer cuts faces with the spec."""
    from fer_utils.models.networks import input_side
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    config = TrainConfig(epochs=1, image_size=(16, 16), patience=1)
    run = train_run(None, FaceData(toy), config, tmp_path / "run", verbose=0)
    assert read_crop_spec(run.path) == read_crop_spec(toy) and "crops" not in run.config()
    assert input_side(run.load()) is None and run.load().get_layer("resize").output.shape[1:3] == (16, 16)
    recognizer = Recognizer.of_run(run)
    assert recognizer.spec.side == 64 and recognizer.margin == read_crop_spec(toy).margin


def legacy_run(folder: Path, crops: dict | None, side: int = 32) -> Path:
    """A run folder as the package wrote it before the crop spec: a model of one input side with no resizer,
    its classes, and config.json recording the crops' preprocessing settings (`crops`) and the image size."""
    import keras

    from fer_utils.models.networks import save_model

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(side, side, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    outputs = keras.layers.Dense(len(TOY_CLASSES), activation="softmax")(keras.layers.Flatten()(x))
    save_model(keras.Model(inputs, outputs), folder / "model.keras", list(TOY_CLASSES))
    (folder / "config.json").write_text(json.dumps({"image_size": [side, side], "crops": crops}))
    return folder


def test_a_run_made_before_the_spec_loads_and_is_served_as_it_was_trained(tmp_path: Path) -> None:
    """Its config.json's crops (180 px, margin 0.2) become its spec; its 32 px model is put behind the model's
    resizer, so it gets the 180 px crop resized as training resized it (bilinear), not a crop cut at 32."""
    import tensorflow as tf

    from fer_utils.assets import still_paths
    from fer_utils.data.video import read_image
    from fer_utils.faces.crops import crop_face
    from fer_utils.models.networks import input_side, load_model
    from fer_utils.train.runs import RunFolder

    settings = {"detector": "opencv-haar", "size": 180, "margin": 0.2, "align": False, "frames": 6}
    run = RunFolder(legacy_run(tmp_path / "old", settings))
    assert run.crop_spec() == CropSpec(detector="opencv-haar", margin=0.2, side=180)
    model = run.load()
    assert input_side(model) is None and input_side(load_model(run.model_file)) == 32
    image = read_image(still_paths()[0])
    result = Recognizer.of_run(run).frame(image)
    crop = crop_face(image, Recognizer.of_run(run).detector.detect(image)[0], size=180, margin=0.2)
    np.testing.assert_array_equal(result.crops[0], crop)
    trained_as = tf.image.resize(crop[None, ..., None], (32, 32))  # what the old training pipeline fed it
    expected = load_model(run.model_file)(trained_as).numpy()[0]
    np.testing.assert_allclose([result.faces[0].probabilities[c] for c in TOY_CLASSES], expected, atol=1e-6)


def test_older_runs_without_a_side_or_with_aligned_crops(tmp_path: Path) -> None:
    """Crops recorded without a side take the run's image size; crops made by hand (no record) the default spec
    at that size; a model folder with no config at all the side its model takes. Aligned crops are refused
    by the recognizer, which does not align."""
    from fer_utils.train.runs import RunFolder

    no_side = RunFolder(legacy_run(tmp_path / "a", {"detector": "dlib-hog", "margin": 0.3, "align": False}, 48))
    assert no_side.crop_spec() == CropSpec(margin=0.3, side=48)
    by_hand = RunFolder(legacy_run(tmp_path / "b", None, 48))
    assert by_hand.crop_spec() == CropSpec(side=48)
    (by_hand / "config.json").unlink()
    assert by_hand.crop_spec(48) == CropSpec(side=48) and Recognizer.of_run(by_hand).spec.side == 48
    aligned = RunFolder(legacy_run(tmp_path / "c", {"detector": "dlib-hog", "size": 32, "margin": 0.1, "align": True}))
    with pytest.raises(PredictionError, match="eye-aligned"):
        Recognizer.of_run(aligned)
