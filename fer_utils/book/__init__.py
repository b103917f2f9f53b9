"""The book's glue: what the chapters need besides the library, and their one import, the kit.

A chapter imports `fer_utils.book.kit`, which gathers the names defined in the other modules here; each of those
loads only what it needs. The library (`fer_utils.*`) knows nothing of chapters; `fer_utils.cli` builds on both."""
