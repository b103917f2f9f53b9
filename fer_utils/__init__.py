"""fer_utils: the helper package behind the executable book on lightweight facial emotion recognition.

The book rebuilds Ding, Tang & Lu, "Investigation on Light-Weight Deep Learning Model for Emotion
Recognition Using Facial Expressions" (IEEE TENCON 2023). A chapter shows the code it teaches by displaying
these modules' definitions (`fer.show`) and runs them; everything it calls comes from here, through the
book's kit (`from fer_utils.book.kit import fer`). Each module
does one job; importing the package is cheap, so heavy libraries (TensorFlow, dlib, OpenCV) are imported
by the modules that need them.

The Pythons the pinned environment (requirements.txt) installs on, said once here: tensorflow-cpu 2.20 has
wheels up to 3.13 (none for 3.14), and SciPy 1.16 and Pillow 13 need 3.11 or later; pyproject.toml's
`requires-python` says the same. This module is kept importable by older Pythons (no newer syntax), so that
`python -m fer_utils` can say so (`python_problem`).
"""

__version__ = "0.2.0"
__all__ = ["SUPPORTED_PYTHONS", "__version__", "python_problem"]

SUPPORTED_PYTHONS = ((3, 11), (3, 13))  # the oldest and the newest minor version, both supported


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
