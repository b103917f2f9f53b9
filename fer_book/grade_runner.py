"""Inside a grading sandbox: one notebook run in a kernel, a cell at a time, on the grader's requests.

`python -m fer_book.grade_runner NOTEBOOK` starts a fresh kernel whose working folder is the sandbox's
own (a copy of the notebook beside it as `submission.ipynb`), makes the kernel's `Answers`
(`fer_utils.book.exercises.exchange`) before any cell of the notebook, answers `{"ready": true}`, then
reads one JSON request a line from its standard input and answers each with one JSON line:

- `{"op": "run", "index": i, "timeout": s}`: run cell `i`; `{"error": "Name: value" or null}`;
- `{"op": "export", "exercise": n, "source": "answer"}`: the kernel writes the answer (the value of
  `source`) as plain data; `{"error": …, "payload": its JSON text or null}`;
- `{"op": "call", "exercise": n, "arguments": path}`: the kernel calls the function of exercise `n` on
  the pickled arguments at `path`; the same reply, the payload being what it returned or raised;
- `{"op": "reference", "exercise": n, "source": "clips, 'neutral'", "path": p}`: the kernel pickles the
  values of `source` to `p` (the grader's own run of the book's chapter only).

Once the kernel dies, runs out of time or prints more than the output cap, the reply is `{"stop":
{"status", "message"}}` and the runner ends. Everything it answers from a student's notebook is the
student's claim: the grader decodes it as data and checks it in another process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from nbclient import NotebookClient

from fer_utils.book.exercises.exchange import ANSWERS_NAME

OUTPUT_LIMIT = 32_000_000  # characters of output past which a notebook's run is stopped (a flooding kernel)
SETUP = (
    "from fer_utils.book.exercises.exchange import Answers as _FerAnswers\n"
    f"{ANSWERS_NAME} = _FerAnswers()\ndel _FerAnswers"
)


@dataclass(frozen=True)
class Stop:
    """Where and why a run stopped before its end: the cell index and the grade status of what was left."""

    index: int
    status: str
    message: str


def output_size(content: dict) -> int:
    """About how many characters an output message carries (its text, data and traceback)."""
    data = content.get("data") or {}
    parts = [content.get("text", ""), *data.values(), *(content.get("traceback") or [])]
    return sum(len(part) if isinstance(part, str) else len(json.dumps(part)) for part in parts)


class CappedClient(NotebookClient):
    """A NotebookClient that kills the kernel once the outputs pass `output_limit` characters (and keeps
    none after), so a kernel printing without end cannot fill the runner's memory; the run then ends as
    with a dead kernel, `flooded` set."""

    output_limit = OUTPUT_LIMIT
    output_seen = 0
    flooded = False

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> object:
        if self.flooded:
            return None
        self.output_seen += output_size(msg.get("content", {}))
        if self.output_seen > self.output_limit:
            self.flooded = True
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            if process is not None:
                process.kill()
            return None
        return super().output(outs, msg, display_id, cell_index)


def cell_error(cell: dict) -> str | None:
    """The exception an executed cell raised, as `Name: value` (None: it raised none)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return None


def make_client(notebook: object, workdir: Path, output_limit: int) -> CappedClient:
    """A client for `notebook` (an nbformat node) whose kernel runs in `workdir`."""
    client = CappedClient(
        notebook,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.output_limit = output_limit
    return client


def run_cell(client: CappedClient, index: int, timeout_s: float) -> Stop | None:
    """Run cell `index` within `timeout_s`; where the run stops (past the time, a dead or flooding
    kernel), or None. An error in the cell is kept as its output and is no stop."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if timeout_s <= 0:
        return Stop(index, "timeout", "")
    client.timeout = max(1, int(timeout_s))
    try:
        client.execute_cell(client.nb.cells[index], index)
    except (CellTimeoutError, TimeoutError):
        return Stop(index, "timeout", "")
    except DeadKernelError as exc:
        if client.flooded:
            mb = client.output_limit / 1e6
            return Stop(index, "error", f"the notebook printed more than {mb:g} MB; it was stopped there")
        return Stop(index, "error", f"the kernel died in cell {index + 1} ({exc}); out of memory?")
    return None


def kernel_env(workdir: Path) -> dict[str, str]:
    """The kernel's environment: its IPython profile private to `workdir`, so that no startup file of
    another run can reach it."""
    return {**os.environ, "IPYTHONDIR": str(workdir / ".ipython"), "PYTHONDONTWRITEBYTECODE": "1"}


def execute_notebook(notebook: dict, timeout_s: float, workdir: Path, output_limit: int = OUTPUT_LIMIT):
    """Execute `notebook` in a fresh kernel in `workdir`, all cells within `timeout_s`: the executed
    notebook and where it stopped (None: it finished). Errors in cells are kept and the run goes on."""
    import nbformat

    nb = nbformat.reads(json.dumps(notebook), as_version=4)
    client = make_client(nb, workdir, output_limit)
    deadline = time.monotonic() + timeout_s
    late = f"the notebook did not finish within {timeout_s:g} s"
    with client.setup_kernel(env=kernel_env(workdir)):
        for index in range(len(nb.cells)):
            stop = run_cell(client, index, deadline - time.monotonic())
            if stop is not None:
                return nb, Stop(stop.index, stop.status, stop.message or late)
    return nb, None


class Runner:
    """The request loop: a kernel, the notebook, and a private folder for what the kernel writes back."""

    def __init__(self, notebook_path: Path, output_limit: int, reply: object) -> None:
        import nbformat

        self.workdir = Path.cwd()
        self.nb = nbformat.read(notebook_path, as_version=4)
        self.client = make_client(self.nb, self.workdir, output_limit)
        self.output_limit = output_limit
        self.results = Path(tempfile.mkdtemp(prefix="fer-answers-"))
        self.reply = reply
        self.calls = 0

    def code(self, source: str, timeout_s: float, result: Path | None = None) -> dict:
        """Run the grader's own `source` as a cell after the notebook's; its error and what it wrote."""
        import nbformat

        self.nb.cells.append(nbformat.v4.new_code_cell(source))
        stop = run_cell(self.client, len(self.nb.cells) - 1, timeout_s)
        if stop is not None:
            return {"stop": asdict(stop)}
        payload = None
        if result is not None and result.is_file():
            if result.stat().st_size > self.output_limit:
                return {"error": f"it is larger than {self.output_limit / 1e6:g} MB", "payload": None, "oversize": True}
            payload = result.read_text()
            result.unlink()
        return {"error": cell_error(self.nb.cells[-1]), "payload": payload}

    def handle(self, request: dict) -> dict:
        """One request (see the module's docstring) and its reply."""
        op, timeout_s = request.get("op"), float(request.get("timeout", 60))
        number = int(request.get("exercise", 0))
        if op == "run":
            index = int(request["index"])
            stop = run_cell(self.client, index, timeout_s)
            return {"stop": asdict(stop)} if stop else {"error": cell_error(self.nb.cells[index])}
        if op == "export":
            path = self.results / f"answer-{number}.json"
            source = f"{ANSWERS_NAME}.export({number}, {str(path)!r}, {request['source']})"
            return self.code(source, timeout_s, path)
        if op == "call":
            self.calls += 1
            path = self.results / f"result-{self.calls}.json"
            source = f"{ANSWERS_NAME}.call({number}, {str(request['arguments'])!r}, {str(path)!r})"
            return self.code(source, timeout_s, path)
        if op == "reference":
            rest = f", {request['source']}" if request.get("source") else ""
            return self.code(f"{ANSWERS_NAME}.save_reference({str(request['path'])!r}{rest})", timeout_s)
        return {"error": f"unknown request {op!r}"}

    def serve(self, requests: object) -> None:
        """Start the kernel, make its Answers, then answer requests until they end or the run stops."""
        with self.client.setup_kernel(env=kernel_env(self.workdir)):
            ready = self.code(SETUP, 120)
            if "stop" in ready or ready.get("error"):
                self.reply({"stop": ready.get("stop") or {"index": 0, "status": "error", "message": ready["error"]}})
                return
            self.reply({"ready": True})
            for line in requests:  # type: ignore[attr-defined]
                answer = self.handle(json.loads(line))
                self.reply(answer)
                if "stop" in answer:
                    return


def replier(stream: object) -> object:
    """A function writing one JSON line to `stream` and flushing it."""

    def reply(message: dict) -> None:
        stream.write(json.dumps(message) + "\n")  # type: ignore[attr-defined]
        stream.flush()  # type: ignore[attr-defined]

    return reply


def protocol_streams() -> tuple[object, object]:
    """(requests, replies): the standard input, and the standard output moved to a descriptor of its own,
    fd 1 then pointing at the standard error, so that what libraries print never mixes with replies."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin, replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_book.grade_runner")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--output-limit", type=int, default=OUTPUT_LIMIT)
    args = parser.parse_args(argv)
    requests, replies = protocol_streams()
    shutil.copyfile(args.notebook, Path.cwd() / "submission.ipynb")
    Runner(args.notebook, args.output_limit, replier(replies)).serve(requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
