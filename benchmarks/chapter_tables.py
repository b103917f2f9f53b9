"""Copy what an executed chapter measured into benchmarks/results (issue 44): chapter 10's test-side table and
its comparison on real faces, with the commit that executed it, so that benchmarks/README.md can cite them.

    python -m fer_book execute --out /tmp/stage --only 10
    PYTHONPATH=$PWD .venv/bin/python benchmarks/chapter_tables.py /tmp/stage --commit $(git rev-parse --short HEAD)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "wild_chapter10.json"
MARKERS = {"test side": "majority_baseline", "real faces": "real macro F1"}


def tables(notebook: Path) -> dict[str, str]:
    """The plain-text outputs of chapter 10 that hold each table, by name (the first output showing its marker
    column and the book's network)."""
    cells = json.loads(notebook.read_text())["cells"]
    found: dict[str, str] = {}
    for cell in cells:
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/plain", ""))
            for name, marker in MARKERS.items():
                if name not in found and marker in text and "wild-cnn" in text and "London" not in text:
                    found[name] = text
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", type=Path)
    parser.add_argument("--commit", required=True)
    args = parser.parse_args()
    record = {"chapter": "10_seven_expressions", "commit": args.commit, "tables": tables(
        args.stage / "notebooks" / "10_seven_expressions.ipynb")}  # fmt: skip
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    print("\n\n".join(record["tables"].values()))


if __name__ == "__main__":
    main()
