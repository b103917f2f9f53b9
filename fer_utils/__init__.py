"""fer_utils: the helper package behind the executable book on lightweight facial emotion recognition.

The book rebuilds Ding, Tang & Lu, "Investigation on Light-Weight Deep Learning Model for Emotion
Recognition Using Facial Expressions" (IEEE TENCON 2023). A chapter shows the code it teaches in saved
cells kept identical to these modules (`python -m fer_book sync`) and runs that code; everything else it
calls comes from here, through the book's kit (`from fer_utils.book.kit import fer, …`). Each module
does one job; importing the package is cheap, so heavy libraries (TensorFlow, dlib, OpenCV) are imported
by the modules that need them.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
