"""The path of one face, measured: the `fer_utils` modules a clip passes from its dataset folder to the live
page's model, in the order their code first runs (issue 56 asked for at most 15 steps).

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/face_path.py [--out FILE]

Runs the three commands a reader runs, `preprocess` (one worker, so that the crops are made in this process),
`train` (two epochs) and `export`, on two actors of the synthetic sample (`make sample`), with a profiler hook on
every thread that notes each module whose functions are called (code that runs on import is not a step). A step
is a module of the path; the command line's own modules (`fer_utils.cli`) and the plumbing under every step
(`errors`, `registry`, `interrupts`, `storage`: atomic writes, locks, file names) are listed apart.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUMBING = ("fer_utils.cli", "fer_utils.errors", "fer_utils.registry", "fer_utils.interrupts", "fer_utils.storage")


def traced(commands: list[list[str]]) -> list[str]:
    """The `fer_utils` modules whose code runs during `commands` (each `python -m fer_utils` argv), in order."""
    from fer_utils.cli import main

    seen: dict[str, None] = {}

    def importing(frame: object) -> bool:
        """Whether `frame` runs inside a module's body (code run on import, not on the face's path)."""
        while frame is not None:
            if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__", "").startswith("fer_utils"):
                return True
            frame = frame.f_back
        return False

    def hook(frame: object, event: str, _: object) -> None:
        name = frame.f_globals.get("__name__", "")  # type: ignore[attr-defined]
        if event == "call" and name.startswith("fer_utils.") and name not in seen and not importing(frame):
            seen[name] = None

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        for argv in commands:
            if main(argv) != 0:
                raise SystemExit(f"python -m fer_utils {' '.join(argv)} failed")
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return list(seen)


def main(argv: list[str] | None = None) -> int:
    """Trace the three commands, print the steps and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "face_path.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src, work = Path(tmp) / "clips", Path(tmp)
        for actor in ("Actor_01", "Actor_02"):
            shutil.copytree(ROOT / "data" / "sample" / actor, src / actor)
        commands = [
            ["preprocess", "--dataset", "ravdess", "--src", str(src), "--out", str(work / "crops"), "--workers", "1"],
            ["train", "--crops", str(work / "crops"), "--epochs", "2", "--size", "32", "--out", str(work / "run")],
            ["export", "--run", str(work / "run"), "--out", str(work / "page")],
        ]
        modules = traced(commands)
    steps = [m for m in modules if not m.startswith(PLUMBING)]
    record = {
        "commands": ["preprocess", "train", "export"],
        "steps": steps,
        "plumbing": sorted(set(modules) - set(steps)),
    }
    for number, module in enumerate(steps, 1):
        print(f"{number:3d}  {module}")
    print(f"{len(steps)} steps; plumbing beside them: {', '.join(record['plumbing'])}")
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
