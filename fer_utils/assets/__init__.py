"""Files shipped inside the package (so that `pip install` on Colab brings them too)."""

from importlib.resources import files
from pathlib import Path


def stills_dir() -> Path:
    """Folder of the 24 real neutral RAVDESS actor stills (CC BY-NC-SA 4.0, see ATTRIBUTION.md there)."""
    return Path(str(files("fer_utils.assets") / "ravdess_stills"))


def still_paths() -> list[Path]:
    """The 24 stills, Actor_01.png … Actor_24.png, in actor order."""
    return sorted(stills_dir().glob("Actor_*.png"))


def real_media_dir() -> Path:
    """Folder of the real media sets (London faces, CREMA-D clips, a RAVDESS clip; see ATTRIBUTION.md there)."""
    return Path(str(files("fer_utils.assets") / "real_media"))


def london_faces_dir() -> Path:
    """The Face Research Lab London Set: `neutral/NNN_03.jpg`, `smiling/NNN_08.jpg`, 102 people (CC BY 4.0)."""
    return real_media_dir() / "london_faces"


def cremad_dir() -> Path:
    """Six real CREMA-D clips of actor 1001, one per emotion, `1001_DFA_<EMO>_XX.flv` (ODbL 1.0 / DbCL 1.0)."""
    return real_media_dir() / "cremad"


def cremad_index_dir() -> Path:
    """CREMA-D's index (path, SHA-256 and size of its 7,442 clips), demographics, sentences and license (no media)."""
    return Path(str(files("fer_utils.assets") / "cremad_index"))


def ravdess_clip_path() -> Path:
    """One real RAVDESS clip, `01-01-08-02-01-01-19.mp4` (actor 19, surprised, strong; CC BY-NC-SA 4.0)."""
    return real_media_dir() / "ravdess_clip" / "01-01-08-02-01-01-19.mp4"


def diffusionfer_dir() -> Path:
    """DiffusionFER-S: 1,289 generated (not photographed) faces, 96 px gray, 7 class folders (CC0 1.0)."""
    return Path(str(files("fer_utils.assets") / "diffusionfer"))


def recipe_runs_path() -> Path:
    """The FER-2013 runs the wild presets were chosen by, scored on PublicTest (benchmarks/fer2013_recipe.py appends
    to it; chapter 7 reads it): beside the pretrained model's folder, which `fer_book pretrain` replaces whole."""
    return Path(str(files("fer_utils.assets") / "recipe_runs.jsonl"))
