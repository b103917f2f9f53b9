"""fer_book: the tooling that builds the book, kept out of the package a learner installs.

Executing the notebooks (execute), building the HTML site (build, with the Sphinx extension in
sphinx_ext, the favicon and the ipywidgets bundle), the live demo page (demo, npm), the repository
links (links) and the student edition (student). It runs from the repository root without being
installed (`python -m fer_book …`); it imports fer_utils, and fer_utils never imports it.
"""
