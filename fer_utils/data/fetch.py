"""Download any dataset by name (`python -m fer_utils download`): RAVDESS from Zenodo
(`fer_utils.data.download`), CREMA-D from its Git LFS store (`fer_utils.data.cremad`); SAVEE and MEAD need
registration, so `download_dataset` raises an InputError that says where to get them and how to lay
them out. It sits above both downloaders, neither of which imports it.
"""

from __future__ import annotations

from pathlib import Path

from fer_utils.data.cremad import download_cremad, downloaded_paths
from fer_utils.data.download import download_ravdess
from fer_utils.errors import InputError
from fer_utils.registry import DOWNLOADABLE_DATASETS

SAVEE_URL = "http://kahlan.eps.surrey.ac.uk/savee/"
MEAD_URL = "https://wywu.github.io/projects/MEAD/MEAD.html"

# Where the datasets that need registration come from and the layout their indexer expects.
MANUAL_DATASETS: dict[str, str] = {
    "savee": (
        f"SAVEE cannot be downloaded automatically{{where}}: it needs registration at {SAVEE_URL} "
        "(Surrey Audio-Visual Expressed Emotion, University of Surrey). Unpack the AudioVisualClip part as "
        "<root>/<DC|JE|JK|KL>/<code><nn>.avi with codes a, d, f, h, n, sa, su (e.g. KL/sa03.avi), "
        "then index it with fer_utils.data.corpora.index_savee(root)."
    ),
    "mead": (
        f"MEAD cannot be downloaded automatically{{where}}: request access via {MEAD_URL} "
        "(Wang et al., ECCV 2020). Unpack each subject's video archive as "
        "<root>/<M003|W009|...>/video/<view>/<emotion>/level_<n>/<nnn>.mp4 "
        "(e.g. M003/video/front/angry/level_1/001.mp4), then index it with fer_utils.data.corpora.index_mead(root)."
    ),
}


def download_dataset(name: str, dest: Path, **kwargs) -> list[Path]:
    """Download dataset `name`: RAVDESS (its archives) and CREMA-D (its clips; a DownloadError when any
    failed) for real, returning the paths; SAVEE and MEAD raise their instructions."""
    key = name.lower()
    if key == "ravdess":
        return download_ravdess(dest, **kwargs)
    if key == "cremad":
        return downloaded_paths(download_cremad(dest, **kwargs), dest, strict=True)
    if key in MANUAL_DATASETS:
        raise InputError(MANUAL_DATASETS[key].format(where=f" at {dest}"))
    raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DOWNLOADABLE_DATASETS)}")
