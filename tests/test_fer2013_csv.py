"""FER-2013's one CSV when it is not the file Kaggle ships: each case a clear error or a
rejected row with its reason, a line read with a bounded buffer, any line ending."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from layouts import make_fer2013_csv

from fer_utils.data.fer2013 import MAX_ROW_BYTES, index_fer2013_csv
from fer_utils.data.media import read_image
from fer_utils.errors import InputError

ROWS = 7 * 3  # make_fer2013_csv(rows_per_class=1, test_per_class=1): 7 classes × (1 train + 1 + 1 test)
FACE = " ".join(["128"] * 48 * 48)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A well-formed FER-2013 CSV of 21 rows (LF line endings)."""
    return make_fer2013_csv(tmp_path / "good", rows_per_class=1, test_per_class=1, malformed=())


def with_lines(path: Path, *extra: str) -> Path:
    """`path` with `extra` data lines appended."""
    with path.open("a") as fh:
        fh.write("".join(f"{line}\n" for line in extra))
    return path


def test_a_header_without_rows_is_a_clear_error(tmp_path: Path) -> None:
    """It was an IndexError: the message read `rejected[0]` when nothing was rejected."""
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    with pytest.raises(InputError, match="holds a header and no data row"):
        index_fer2013_csv(tmp_path / "fer2013.csv")


def test_crlf_endings_index_every_row_and_each_row_reads_back(good: Path) -> None:
    converted = good.with_name("converted.csv")
    converted.write_bytes(good.read_bytes().replace(b"\n", b"\r\n"))
    clips = index_fer2013_csv(converted).clips
    expected = index_fer2013_csv(good).clips
    assert len(clips) == ROWS and clips["emotion"].tolist() == expected["emotion"].tolist()
    for got, want in zip(clips["path"].iloc[[0, -1]], expected["path"].iloc[[0, -1]]):
        assert np.array_equal(read_image(got), read_image(want))


def test_a_huge_line_is_rejected_without_being_held_in_memory(good: Path) -> None:
    """A 150 MB line cost 1.1 GB before it was rejected: the file is now read in bounded chunks."""
    huge = 30 * 2**20
    with good.open("a") as fh:
        fh.write("3," + "1 " * (huge // 2) + ",Training\n")
        fh.write(f"3,{FACE},Training\n")  # a good row after it is still read
    tracemalloc.start()
    try:
        index = index_fer2013_csv(good)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MB for a {huge / 2**20:.0f} MB line"
    assert len(index.clips) == ROWS + 1
    assert index.rejected["reason"].tolist() == [f"line longer than {MAX_ROW_BYTES} bytes: no FER-2013 row"]


def test_a_fourth_field_is_a_rejected_row(good: Path) -> None:
    """It was accepted silently."""
    index = index_fer2013_csv(with_lines(good, f"3,{FACE},Training,extra"))
    assert len(index.clips) == ROWS
    assert index.rejected["reason"].tolist() == ["4 field(s) where the header names 3 (emotion, pixels, Usage)"]


def test_a_negative_pixel_value_is_named(good: Path) -> None:
    """`-1` was "not all whole numbers"."""
    index = index_fer2013_csv(with_lines(good, "3," + FACE.replace("128", "-1", 1) + ",Training"))
    assert index.rejected["reason"].tolist() == [
        "pixel value -1 is below 0 (pixel values are whole numbers from 0 to 255)"
    ]


@pytest.mark.parametrize("value", ["299", "0256", "1000"])
def test_a_pixel_value_above_255_is_a_rejected_row_not_indexed(good: Path, value: str) -> None:
    """`299` passed the check (whole numbers, one space apart) and was indexed."""
    index = index_fer2013_csv(with_lines(good, "3," + FACE.replace("128", value, 1) + ",Training"))
    assert len(index.clips) == ROWS
    assert index.rejected["reason"].tolist() == [
        f"pixel value {value} is above 255 (pixel values are whole numbers from 0 to 255)"
    ]
    ragged = index_fer2013_csv(with_lines(good, "3," + FACE.replace("128 ", "300  ", 1) + ",Training"))
    assert "pixel value 300 is above 255" in ragged.rejected["reason"].iloc[-1]


@pytest.mark.parametrize("value", ["\u0663\u0660\u0660", "\u00b2"])
def test_a_pixel_value_in_other_digits_is_a_rejected_row(good: Path, value: str) -> None:
    """Arabic-Indic `٣٠٠` (300) passed the check (`str.isdigit`) and read back wrapped to 44; a superscript `²`
    passed it too."""
    index = index_fer2013_csv(with_lines(good, "3," + FACE.replace("128", value, 1) + ",Training"))
    assert len(index.clips) == ROWS
    assert index.rejected["reason"].tolist() == [
        f"pixel value {value!r} is not a whole number (pixel values are whole numbers from 0 to 255)"
    ]


def test_a_zip_named_csv_is_a_clear_error_not_binary_text(good: Path, tmp_path: Path) -> None:
    """Kaggle's download is a zip: named .csv, its header error printed binary bytes."""
    archive = tmp_path / "fer2013.csv"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(good, "fer2013.csv")
    with pytest.raises(InputError, match="is a zip archive, not a CSV") as error:
        index_fer2013_csv(archive)
    assert "\\x" not in str(error.value) and "PK" not in str(error.value)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"emotion,pixels,Usage\n\x00\x01\x02")
    with pytest.raises(InputError, match="binary data"):
        index_fer2013_csv(binary)
