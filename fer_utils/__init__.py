"""fer_utils: the helper package behind the executable book on lightweight facial emotion recognition.

The book rebuilds Ding, Tang & Lu, "Investigation on Light-Weight Deep Learning Model for Emotion Recognition Using
Facial Expressions" (IEEE TENCON 2023). Importing it is cheap: TensorFlow, dlib and OpenCV load where needed. No
newer syntax here, so that `python -m fer_utils` on an older Python can say so (`python_problem`)."""

__version__ = "0.2.0"
__all__ = ["SUPPORTED_PYTHONS", "Recognizer", "__version__", "python_problem"]

SUPPORTED_PYTHONS = ((3, 11), (3, 13))  # the oldest and the newest supported


def __getattr__(name):
    """`from fer_utils import Recognizer`, the one inference path, loaded when first asked for."""
    if name == "Recognizer":
        from fer_utils.deploy.inference import Recognizer

        return Recognizer
    raise AttributeError(f"module 'fer_utils' has no attribute {name!r}")


def python_problem(version):
    """None when a Python of `version` (a tuple like sys.version_info) is supported, else the one line to say."""
    (oldest, newest), found = SUPPORTED_PYTHONS, tuple(version[:2])
    if oldest <= found <= newest:
        return None
    supported = f"{oldest[0]}.{oldest[1]} to {newest[0]}.{newest[1]}"
    return (
        f"fer_utils runs on Python {supported} (the versions its pinned TensorFlow, SciPy and Pillow have wheels "
        f"for); this is Python {found[0]}.{found[1]}: make the environment with one of them, e.g. "
        f"`make install PYTHON=python{oldest[0]}.{oldest[1]}`"
    )
