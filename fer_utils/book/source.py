"""The package's code, shown in a chapter: the package is the source, the chapter displays it (after d2l's
`#@save`) and then calls the package's function. To try a change, edit a copy in a cell."""

from __future__ import annotations

import inspect
from pathlib import Path


def source_of(*objects: object) -> str:
    """The source of `objects` (functions or classes of the package), as a Markdown code block headed by their file."""
    files = {Path(inspect.getfile(obj)) for obj in objects}
    where = ", ".join(sorted(f"{path.parent.name}/{path.name}" for path in files))
    code = "\n\n".join(inspect.getsource(obj).rstrip() for obj in objects)
    return f"```python\n# fer_utils/{where}\n{code}\n```"


def show(*objects: object) -> None:
    """Display the package's source of `objects`, as the chapter's shown code."""
    from IPython.display import Markdown, display

    display(Markdown(source_of(*objects)))
