"""The package's code, shown in a chapter: the package is the source, the chapter displays it.

A chapter teaches the code it runs by showing it (after d2l's `#@save`, one way): `fer.show(fer.fit_model)`
displays the source of that function as it stands in the package, with the file it lives in, and the chapter
then calls the package's function. To try a change, copy the shown code into a cell and edit it there.
"""

from __future__ import annotations

import inspect
from pathlib import Path


def source_of(*objects: object) -> str:
    """The source of `objects` (functions or classes of the package), as a Markdown code block headed by
    their file."""
    files = {Path(inspect.getfile(obj)) for obj in objects}
    where = ", ".join(sorted(f"{path.parent.name}/{path.name}" for path in files))
    code = "\n\n".join(inspect.getsource(obj).rstrip() for obj in objects)
    return f"```python\n# fer_utils/{where}\n{code}\n```"


def show(*objects: object) -> None:
    """Display the package's source of `objects`, as the chapter's shown code."""
    from IPython.display import Markdown, display

    display(Markdown(source_of(*objects)))
