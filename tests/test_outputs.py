"""Output paths checked before any work (`fer_utils.storage.outputs`), through the CLI on real files: an output that
is another output, inside the folder read, a folder, read-only, or a write that fails mid-way (file too large)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fer_utils.assets import london_faces_dir
from fer_utils.cli import main

READ_ONLY = Path("/sys")  # read-only even for root (permission bits do not stop root)


@pytest.fixture()
def faces(tmp_path: Path) -> Path:
    """A folder dataset of 4 real London faces, two classes."""
    root = tmp_path / "faces"
    for folder in ("neutral", "smiling"):
        (root / folder).mkdir(parents=True)
        for image in sorted((london_faces_dir() / folder).glob("*.jpg"))[:2]:
            shutil.copy(image, root / folder)
    return root


def index(root: Path, *extra: str) -> list[str]:
    return ["index", "--dataset", "folder", "--root", str(root), *extra]


def test_index_refuses_the_same_path_for_both_tables(faces: Path, tmp_path: Path, capsys) -> None:
    same = tmp_path / "x.csv"
    assert main(index(faces, "--out", str(same), "--rejected-out", str(same))) == 2
    err = capsys.readouterr().err
    assert f"--out and --rejected-out are the same file {same}" in err
    assert not same.exists()


def test_index_refuses_an_output_inside_the_dataset_it_reads(faces: Path, capsys) -> None:
    inside = faces / "neutral" / "index.csv"
    assert main(index(faces, "--out", str(inside))) == 2
    assert f"--out {inside} is inside {faces}, which this command reads" in capsys.readouterr().err
    assert not inside.exists()


def test_index_refuses_a_folder_and_a_read_only_place_before_indexing(faces: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "a_folder"
    folder.mkdir()
    assert main(index(faces, "--out", str(folder))) == 2
    assert f"--out {folder} is a folder; give a file name" in capsys.readouterr().err
    blocked = READ_ONLY / "fer" / "index.csv"
    assert main(index(faces, "--rejected-out", str(blocked))) == 2
    err = capsys.readouterr().err
    assert f"--rejected-out {blocked}: cannot write in {READ_ONLY}" in err


def test_index_creates_a_missing_parent_folder(faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "index.csv"
    assert main(index(faces, "--out", str(out))) == 0
    assert out.read_text().startswith("path,")
    # the table and its duplicate audit beside it, no temporary file left
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "index.csv",
        "index.duplicates.csv",
        "index.duplicates.json",
    ]


def test_an_output_folder_that_holds_a_read_folder_is_said_to_hold_it(tmp_path: Path) -> None:
    """`--out crops` with `--crops crops/x` said "--out crops is inside crops/x", the other way round."""
    from fer_utils.errors import OutputError
    from fer_utils.storage.outputs import check_outputs

    read = tmp_path / "crops" / "x"
    read.mkdir(parents=True)
    with pytest.raises(OutputError, match=f"--out {tmp_path / 'crops'} holds {read}, which this command reads"):
        check_outputs({"--out": tmp_path / "crops"}, read_folders=[read], folders={"--out"})
    with pytest.raises(OutputError, match=f"--out {read / 'run'} is inside {read}"):
        check_outputs({"--out": read / "run"}, read_folders=[read], folders={"--out"})
    with pytest.raises(OutputError, match=f"--out {read} is {read}, which"):
        check_outputs({"--out": read}, read_folders=[read], folders={"--out"})


def _limit_file_size(limit: int = 200) -> None:
    """In the child: files may not grow past `limit` bytes, and going past is an error (EFBIG), not a signal."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_write_that_fails_midway_leaves_no_half_file_and_says_why(faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "index.csv"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "fer_utils", *index(faces, "--out", str(out))],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_limit_file_size,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"error: could not write --out {out}: File too large" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.glob("*index.csv*")) == []


def test_preprocess_refuses_an_out_that_is_a_file_or_read_only_before_indexing(
    faces: Path, tmp_path: Path, capsys
) -> None:
    a_file = tmp_path / "crops"
    a_file.write_text("not a folder")
    base = ["preprocess", "--dataset", "folder", "--src", str(faces), "--detector", "none", "--quiet"]
    assert main([*base, "--out", str(a_file)]) == 2
    assert f"--out {a_file} is a file, not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "not a folder"
    assert main([*base, "--out", str(READ_ONLY / "crops")]) == 2
    assert f"--out {READ_ONLY / 'crops'}: cannot write in {READ_ONLY}" in capsys.readouterr().err


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained paper CNN at 32 px with classes neutral, smiling (predict only needs its outputs)."""
    from fer_utils.models.networks import build_model, save_model

    folder = tmp_path_factory.mktemp("model")
    return save_model(build_model("paper-cnn", 2, (32, 32, 1)), folder / "model.keras", ["neutral", "smiling"])


@pytest.mark.parametrize("option", ["--json", "--csv", "--out"])
def test_predict_on_a_full_disk_says_which_output_and_leaves_no_half_file(
    model_file: Path, tmp_path: Path, option: str
) -> None:
    """Regression: the annotated copy (--out) on a full disk was a ValueError traceback
    blaming its extension; every output now names itself and leaves nothing behind."""
    face = sorted((london_faces_dir() / "smiling").glob("*.jpg"))[0]
    out = tmp_path / "outputs" / {"--json": "faces.json", "--csv": "faces.csv", "--out": "annotated.png"}[option]
    done = subprocess.run(
        [sys.executable, "-m", "fer_utils", "predict", "--model", str(model_file), str(face), option, str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
        preexec_fn=lambda: _limit_file_size(50),  # the one-face CSV is 119 bytes
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert f"error: could not write {option} {out}: File too large" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(out.parent.iterdir()) == []


def test_a_write_failure_without_a_file_name_still_reads_as_a_sentence(capsys) -> None:
    """Regression: `train` on a full disk printed "could not write : File too large"."""
    import argparse
    import errno

    from fer_utils.cli import run_handler

    def handler(args: argparse.Namespace) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    assert run_handler(argparse.Namespace(handler=handler)) == 2
    assert capsys.readouterr().err == "error: could not write a file: No space left on device\n"


def test_predict_refuses_an_image_out_for_a_video_before_any_work(model_file: Path, tmp_path: Path, capsys) -> None:
    """`predict clip.flv --out x.png` wrote the first of 56 frames without a word."""
    from fer_utils.assets import cremad_dir

    clip = cremad_dir() / "1001_DFA_ANG_XX.flv"
    out = tmp_path / "x.png"
    code = main(["predict", "--model", str(model_file), str(clip), "--out", str(out)])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert f"--out {out} is an image, but {clip.name} is a video: the annotated copy would hold its first frame" in err


def test_predict_refuses_a_video_out_for_a_still_before_any_work(model_file: Path, tmp_path: Path, capsys) -> None:
    """`predict face.jpg --out x.mp4` wrote a one-frame video without a word."""
    face = sorted((london_faces_dir() / "smiling").glob("*.jpg"))[0]
    out = tmp_path / "x.mp4"
    assert main(["predict", "--model", str(model_file), str(face), "--out", str(out)]) == 2 and not out.exists()
    assert f"--out {out} is a video, but {face.name} is a still: name it x.png" in capsys.readouterr().err


def test_an_existing_output_file_is_kept_unless_overwrite_is_given(
    faces: Path, model_file: Path, tmp_path: Path, capsys
) -> None:
    """`index --out notes.json` and `predict --out`/`--json` wrote over a student's own file without a word."""
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')
    face = sorted((london_faces_dir() / "smiling").glob("*.jpg"))[0]
    refused = {
        "index --out": index(faces, "--out", str(notes)),
        "predict --json": ["predict", "--model", str(model_file), str(face), "--json", str(notes)],
        "predict --out": ["predict", "--model", str(model_file), str(face), "--out", str(notes.with_suffix(".png"))],
    }
    notes.with_suffix(".png").write_bytes(b"my picture")
    for name, argv in refused.items():
        assert main(argv) == 2, name
        option = name.split()[1]
        assert f"{option} {argv[argv.index(option) + 1]} already exists: give another path, or --overwrite" in (
            capsys.readouterr().err
        ), name
    assert notes.read_text() == '{"my": "notes"}' and notes.with_suffix(".png").read_bytes() == b"my picture"
    assert main([*refused["predict --json"], "--overwrite"]) == 0
    assert json.loads(notes.read_text())[0]["emotion"] in ("neutral", "smiling")


def test_a_missing_model_or_run_is_said_missing_before_anything_else(tmp_path: Path, capsys) -> None:
    """`quantize --model nothere.keras --out q.tflite` blamed --out; `evaluate --run nothere` and `export --run
    nothere` said the folder was not a finished run, or had no model file."""
    missing = tmp_path / "nothere"
    for argv in (
        ["quantize", "--model", f"{missing}.keras", "--out", "q.tflite"],
        ["evaluate", "--run", str(missing)],
        ["export", "--run", str(missing)],
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        assert f"{missing}{'.keras' if argv[0] == 'quantize' else ''} does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["detect", "face.jpg", "--max-side", "tiny"], "--max-side: expected 'auto', 'full' or a number of pixels"),
        (["sample", "--out", "s", "--actors", "a-b"], "--actors: expected actor numbers such as 1-24 or 1,2,5"),
    ],
)
def test_a_malformed_option_value_is_said_in_words_not_by_a_function_name(argv, said, capsys) -> None:
    """argparse named the parsing function: "invalid parse_max_side value: 'tiny'"."""
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert said in err and "parse_max_side" not in err and "actor_list" not in err, err
