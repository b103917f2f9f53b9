"""fer_utils: the helper package behind the executable book on lightweight facial emotion recognition.

The book rebuilds Ding, Tang & Lu, "Investigation on Light-Weight Deep Learning Model for Emotion
Recognition Using Facial Expressions" (IEEE TENCON 2023). Notebooks import from here and never paste
code. Each module does one job; importing the package is cheap, so heavy libraries (TensorFlow,
dlib, OpenCV) are imported by the modules that need them.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
