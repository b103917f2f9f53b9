"""fer_book: the tooling that builds, executes and grades the book, run from the repository root
(`python -m fer_book …`); never installed, nor imported by fer_utils or the notebooks.
"""
