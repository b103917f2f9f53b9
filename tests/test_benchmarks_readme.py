"""benchmarks/README.md's tables are what benchmarks/readme.py makes from the committed records."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_module():
    spec = importlib.util.spec_from_file_location("benchmarks_readme", ROOT / "benchmarks" / "readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_what_the_committed_records_give():
    assert readme_module().main(["--check", "--root", str(ROOT)]) == 0


def test_a_changed_record_changes_its_table(tmp_path):
    module = readme_module()
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(ROOT / module.README, tmp_path / module.README)
    shutil.copytree(ROOT / module.RESULTS, tmp_path / module.RESULTS)
    path = tmp_path / module.RESULTS / "class_of_30.json"
    record = json.loads(path.read_text())
    record["total_seconds"] = 987.6
    path.write_text(json.dumps(record))

    assert module.main(["--check", "--root", str(tmp_path)]) == 1
    assert module.main(["--root", str(tmp_path)]) == 0
    assert "| 987.6 |" in (tmp_path / module.README).read_text()
    assert module.main(["--check", "--root", str(tmp_path)]) == 0


def test_a_missing_marker_is_an_error(tmp_path):
    module = readme_module()
    (tmp_path / "benchmarks").mkdir()
    shutil.copytree(ROOT / module.RESULTS, tmp_path / module.RESULTS)
    (tmp_path / module.README).write_text("# Benchmarks\n")
    assert module.main(["--check", "--root", str(tmp_path)]) == 2
