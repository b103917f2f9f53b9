"""The book's glue: what the chapters call around the library (cached runs, lesson claims, widgets, plots).

The library (`fer_utils.*`) knows nothing of chapters; this subpackage builds on it, and the command line
(`fer_utils.cli`) on both.
"""
