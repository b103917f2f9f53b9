"""fer_book: the tooling that builds, executes and grades the book, run from the repository root
(`python -m fer_book …`); not installed (`pyproject.toml` packages only `fer_utils*`), and neither fer_utils
nor the notebooks import it (a test checks it).
"""
