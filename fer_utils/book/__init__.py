"""The book's glue: what the chapters need besides the library, and their one import, the kit.

A chapter imports `fer_utils.book.kit` (`from fer_utils.book.kit import fer, …`): the names its code reads,
each defined in its own module, gathered there. The other modules of this subpackage are the data a
chapter reads and its cached runs (`artifacts`), the reports over seeds (`chapters`), the numbers its text
states, glued from the run (`glue`), the claims of its text checked on the run (`claims`), figures (`plots`),
widgets, exercises, the real faces at hand (`realfaces`) and the live demo. Importing one of them loads no other that it does not need.

The library (`fer_utils.*`) knows nothing of chapters; this subpackage builds on it, and the command line
(`fer_utils.cli`) on both.
"""
