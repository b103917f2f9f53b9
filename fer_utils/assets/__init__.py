"""Files shipped inside the package (so that `pip install` on Colab brings them too)."""

from importlib.resources import files
from pathlib import Path


def stills_dir() -> Path:
    """Folder of the 24 real neutral RAVDESS actor stills (CC BY-NC-SA 4.0, see ATTRIBUTION.md there)."""
    return Path(str(files("fer_utils.assets") / "ravdess_stills"))


def still_paths() -> list[Path]:
    """The 24 stills, Actor_01.png … Actor_24.png, in actor order."""
    return sorted(stills_dir().glob("Actor_*.png"))
