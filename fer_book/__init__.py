"""fer_book: the tooling that builds, executes and grades the book, kept out of the package a learner
installs (`pyproject.toml` packages only `fer_utils*`); it runs from the repository root (`python -m fer_book …`),
imports fer_utils, and neither fer_utils nor the notebooks import it (a test checks it).
"""
