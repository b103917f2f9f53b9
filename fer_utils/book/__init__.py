"""The book's glue: what the chapters need besides the library, and their one import, the kit.

A chapter imports `fer_utils.book.kit` (`from fer_utils.book.kit import fer, …`), which gathers the names
defined in the other modules here; each of those loads only the modules it needs. The library
(`fer_utils.*`) knows nothing of chapters; the command line (`fer_utils.cli`) builds on both.
"""
