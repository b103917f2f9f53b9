"""Writing files and folders whole or not at all (`fer_utils.storage.atomic`), on real files: a write that fails
leaves the old file and no temporary, a folder build that fails leaves no folder, two files that belong
together are written both or neither, and what a killed writer left (of every writer in the project,
`fer_book`'s included) is swept while a live writer's work is left alone."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from fer_book.grade_sheet import write_tables
from fer_utils.errors import OutputError
from fer_utils.storage import outputs
from fer_utils.storage.atomic import (
    atomic_file,
    atomic_files,
    atomic_folder,
    remove_dead_temporaries,
    replace_folder,
    temporary_owner,
    temporary_sibling,
    write_atomic,
)

ROOT = Path(__file__).resolve().parents[1]
# In the child: the rename that would put a finished temporary into place kills the process instead (a kill
# at the worst moment), so the temporary is left exactly as the real writer named and filled it.
DIE_AT_RENAME = "import os, sys\nos.replace = os.rename = lambda *args, **kwargs: os._exit(9)\n"


def killed_at_rename(code: str, folder: Path) -> int:
    """Run `code` (a real writer of the project, writing into `folder`, which it reads as sys.argv[1]) in a
    new Python process that dies when it would rename its work into place; return that dead process's pid."""
    child = subprocess.Popen(
        [sys.executable, "-c", DIE_AT_RENAME + code, str(folder)],
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = child.communicate(timeout=120)
    assert child.returncode == 9, err
    return child.pid


def _limit_file_size(limit: int = 100) -> None:
    """In the child: files may not grow past `limit` bytes, and going past is an error (EFBIG), as a full
    disk would be."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("the writer failed mid-way")
    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # not bytes: fails after the temporary was opened
    code = "import sys\nfrom pathlib import Path\nfrom fer_utils.storage.atomic import write_atomic\n"
    code += "write_atomic(Path(sys.argv[1]) / 'metrics.json', 'x' * 1000)"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
    )
    assert "File too large" in done.stderr  # a real failed write (the disk full at 100 bytes)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    write_atomic(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_outputs_write_atomic_names_the_option_when_the_write_fails(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    blocker = temporary_sibling(target)
    blocker.mkdir(parents=True)  # its temporary cannot be opened for writing
    with pytest.raises(OutputError, match=f"could not write --json {target}: Is a directory"):
        outputs.write_atomic(target, "{}", "--json")
    assert not target.exists()
    blocker.rmdir()
    outputs.write_atomic(target, "{}", "--json")
    assert target.read_text() == "{}" and sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_a_failed_folder_build_leaves_no_folder_and_a_finished_one_is_whole(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "run"
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "history.csv").write_text("epoch\n1\n")
        raise RuntimeError("training failed")
    assert not target.exists() and list(target.parent.iterdir()) == []
    with atomic_folder(target) as tmp:
        (tmp / "history.csv").write_text("epoch\n1\n")
        assert not target.exists()  # nothing under the final name until it is whole
    assert [p.name for p in target.parent.iterdir()] == ["run"] and (target / "history.csv").is_file()


def test_replace_folder_puts_the_new_folder_in_place_of_the_old(tmp_path: Path) -> None:
    target, staging = tmp_path / "html", tmp_path / "staging"
    (target / "old").mkdir(parents=True)
    (staging / "new").mkdir(parents=True)
    replace_folder(staging, target)
    assert [p.name for p in target.iterdir()] == ["new"] and sorted(p.name for p in tmp_path.iterdir()) == ["html"]


def test_atomic_files_writes_both_or_neither(tmp_path: Path) -> None:
    grades, summary = tmp_path / "grades.csv", tmp_path / "grades_summary.csv"
    grades.write_text("old grades")
    summary.write_text("old summary")
    with pytest.raises(RuntimeError), atomic_files([grades, summary]) as (grades_tmp, summary_tmp):
        grades_tmp.write_text("new grades")
        summary_tmp.write_text("half of the new")
        raise RuntimeError("the second write failed mid-way")
    assert (grades.read_text(), summary.read_text()) == ("old grades", "old summary")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.csv", "grades_summary.csv"]
    with atomic_files([grades, summary]) as (grades_tmp, summary_tmp):
        grades_tmp.write_text("new grades")
        summary_tmp.write_text("new summary")
        assert grades.read_text() == "old grades"  # neither is in place before both are written
    assert (grades.read_text(), summary.read_text()) == ("new grades", "new summary")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.csv", "grades_summary.csv"]


# Every writer of the project, run for real in a process killed when it would rename its work into place.
WRITERS = {
    "a command's output (fer_utils.storage.outputs)": (
        "from pathlib import Path; from fer_utils.storage.outputs import write_atomic\n"
        "write_atomic(Path(sys.argv[1]) / 'metrics.json', '{}', '--json')",
        [".metrics.json.tmp-{pid}"],
    ),
    "a crop in a preprocessing folder (fer_utils.faces.preprocess)": (
        "from pathlib import Path; from fer_utils.storage.atomic import atomic_write_bytes\n"
        "atomic_write_bytes(Path(sys.argv[1]) / 'crops' / 'happy' / 'a_f0001.png', b'png')",
        ["crops/happy/.a_f0001.png.tmp-{pid}"],
    ),
    "an annotated video (fer_utils.deploy.inference)": (
        "from pathlib import Path; import numpy as np; from fer_utils.deploy.inference import AnnotatedWriter\n"
        "with AnnotatedWriter(Path(sys.argv[1]) / 'annotated.mp4', 10.0) as writer:\n"
        "    writer.write(np.zeros((48, 64, 3), np.uint8))",
        [".annotated.tmp-{pid}.mp4"],
    ),
    "a run folder (fer_utils.storage.atomic.atomic_folder)": (
        "from pathlib import Path; from fer_utils.storage.atomic import atomic_folder\n"
        "with atomic_folder(Path(sys.argv[1]) / 'run') as tmp:\n"
        "    (tmp / 'history.csv').write_text('epoch')",
        [".run.tmp-{pid}"],
    ),
    "the grade sheet (fer_book.grade_sheet)": (
        "from pathlib import Path; import pandas as pd; from fer_book.grade_sheet import write_tables\n"
        "out = Path(sys.argv[1])\n"
        "write_tables({out / 'grades.csv': pd.DataFrame({'a': [1]}), out / 'grades_summary.csv': pd.DataFrame()})",
        [".grades.csv.tmp-{pid}", ".grades_summary.csv.tmp-{pid}"],
    ),
    "the execution times of the book (fer_book.execute)": (
        "from pathlib import Path; from fer_book.execute import write_times\n"
        "write_times(Path(sys.argv[1]) / 'execution_times.json', [])",
        [".execution_times.json.tmp-{pid}"],
    ),
}


@pytest.fixture()
def live_pid() -> Iterator[int]:
    """The pid of a process that runs for the whole test."""
    live = subprocess.Popen(["sleep", "120"])
    yield live.pid
    live.kill()
    live.wait()


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_what_a_killed_writer_left_is_swept_and_a_live_writers_work_is_not(
    writer: str, tmp_path: Path, live_pid: int
) -> None:
    code, names = WRITERS[writer]
    dead = killed_at_rename(code, tmp_path)
    left = [tmp_path / name.format(pid=dead) for name in names]
    assert all(path.exists() for path in left), sorted(map(str, tmp_path.rglob("*")))
    assert all(temporary_owner(path) == dead for path in left)
    live = [path.with_name(path.name.replace(f"-{dead}", f"-{live_pid}")) for path in left]  # the same, alive
    for path, twin in zip(left, live):
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, twin)
    assert sorted(remove_dead_temporaries(tmp_path, recursive=True)) == sorted(left)
    assert not any(path.exists() for path in left) and all(path.exists() for path in live)


def test_the_sweeper_reaches_nested_leftovers_only_when_recursive(tmp_path: Path) -> None:
    dead = killed_at_rename(WRITERS["a crop in a preprocessing folder (fer_utils.faces.preprocess)"][0], tmp_path)
    crop = tmp_path / "crops" / "happy" / f".a_f0001.png.tmp-{dead}"
    assert remove_dead_temporaries(tmp_path / "crops") == [] and crop.exists()
    assert remove_dead_temporaries(tmp_path / "crops", recursive=True) == [crop] and not crop.exists()


def test_the_sweeper_leaves_files_that_are_not_temporaries_alone(tmp_path: Path) -> None:
    kept = [".hidden", ".x.tmp-abc", "x.tmp-1", ".x.tmp-", "notes.tmp-1.txt"]  # none names a pid the way we do
    for name in kept:
        (tmp_path / name).write_text("keep")
    assert remove_dead_temporaries(tmp_path, recursive=True) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    assert remove_dead_temporaries(tmp_path / "missing") == []


def test_the_grade_sheet_is_written_both_or_neither_through_atomic_files(tmp_path: Path) -> None:
    out, summary = tmp_path / "grades.csv", tmp_path / "grades_summary.csv"
    out.write_text("previous grades\n")
    summary.write_text("previous summary\n")
    code = "from pathlib import Path; import pandas as pd; from fer_book.grade_sheet import write_tables\n"
    code += "out = Path(sys.argv[1]); table = pd.DataFrame({'student': ['x' * 50] * 3})\n"
    code += "write_tables({out / 'grades.csv': table, out / 'grades_summary.csv': table})"
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
    )
    assert "could not write the grades (File too large); nothing was replaced" in done.stderr
    assert out.read_text() == "previous grades\n" and summary.read_text() == "previous summary\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.csv", "grades_summary.csv"]
    write_tables({out: pd.DataFrame({"a": [1]}), summary: pd.DataFrame({"b": [2]})})
    assert pd.read_csv(out)["a"].tolist() == [1] and pd.read_csv(summary)["b"].tolist() == [2]
