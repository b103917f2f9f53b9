"""Every process that grading starts, each in a sandbox of its own (Linux namespaces through bubblewrap).

A sandbox sees, read-only, the system, the Python, the book's *pristine copy*, the data, the cache and its
`Bind`s; no network, its own namespaces and `/tmp`, `prlimit` caps. What it prints comes back through pipes into
memory, bounded (`Kept`): nothing it does writes on the host's disk. `Isolation.NONE` runs a plain child.
"""

from __future__ import annotations

import contextlib
import enum
import os
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from fer_utils.errors import SetupError

BWRAP = "bwrap"
UNSAFE_OPTION = "--unsafe-no-sandbox"
SANDBOX_TMP = Path("/tmp")  # the sandbox's private /tmp (in memory): its working folder and home are in it
WORKDIR_NAME = "work"
HOME_NAME = "home"
# The pristine copy: the package (checkers included) and the tooling, then the book's files and chapters.
PACKAGE_TREES = ("fer_utils", "fer_book")
BOOK_FILES = ("_toc.yml", "_config.yml")
# Host files a sandbox needs from /etc (read-only, when they exist): the linker cache, names, time zone, fonts.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/fonts",
    "/etc/mime.types",
)
# Environment a sandbox inherits from the grader (nothing else: no tokens, no paths of the teacher's).
PASSED_ENV = (
    "TF_CPP_MIN_LOG_LEVEL",
    "TF_ENABLE_ONEDNN_OPTS",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "LANG",
    "LC_ALL",
    "TZ",
)
# A root grader's sandbox user: a fresh id from this range, owning no file or process (its task limit is its own).
SANDBOX_UIDS = (2_000_000_000, 2_100_000_000)
GIB = 2**30
# A sandbox's output is read through pipes into memory, never written to the host's disk: its stdout whole (otter's
# results) up to STDOUT_BYTES, and of its stderr (every message, the notebook's own included) the first and last.
STDOUT_BYTES = 8 * 2**20
STDERR_BYTES = 2**18
POLL_S = 0.2  # how long the reader waits for output before it checks whether the process is still there


class Isolation(enum.Enum):
    """How grading runs its processes: each in a bubblewrap sandbox, or (unsafe) as plain children."""

    BWRAP = "bwrap"
    NONE = "none"


class Limits(NamedTuple):
    """What one sandboxed process may use."""

    memory_bytes: int = 8 * GIB  # address space of each process (RLIMIT_AS)
    processes: int = 1024  # tasks, processes and threads, of the sandbox's own user (RLIMIT_NPROC)
    disk_bytes: int = GIB  # its /tmp, working folder and home included (in memory)


class Bind(NamedTuple):
    """A host folder or file shown in a sandbox at `target` (read-only unless `writable`)."""

    source: Path
    target: Path
    writable: bool = False


@dataclass(frozen=True)
class Layout:
    """What every sandbox of one grading run sees: the pristine copy, the Python, data and cache, the env."""

    book: Path  # the pristine copy on the host
    book_at: Path  # where the sandboxes see it (the checkout's path; the copy itself without isolation)
    python: Path  # the virtual environment's interpreter
    binds: tuple[Bind, ...]
    env: dict[str, str] = field(default_factory=dict)


def pristine_copy(root: Path, folder: Path, mount_points: list[Path], link_sample: bool) -> Path:
    """Copy the package, tooling and `root`'s chapters into `folder/book`, the only copy grading reads."""
    from fer_book.toc import repo_root, toc_notebooks

    book = Path(folder) / "book"
    book.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in PACKAGE_TREES:
        shutil.copytree(repo_root() / name, book / name, symlinks=True, ignore=skip)
    for name in BOOK_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, book / name)
    for chapter in toc_notebooks(root):
        (book / chapter).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / chapter, book / chapter)
    sample = root / "data" / "sample"
    (book / "data").mkdir()
    if sample.is_symlink():
        (book / "data" / "sample").symlink_to(os.readlink(sample))
    elif link_sample and sample.is_dir():
        (book / "data" / "sample").symlink_to(sample.resolve())
    for point in mount_points:
        (book / point.relative_to(root.resolve())).mkdir(parents=True, exist_ok=True)
    for path in [book, *book.rglob("*")]:  # readable by a sandbox's own user
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return book


def make_layout(root: Path, folder: Path, isolation: Isolation) -> Layout:
    """The pristine copy of the checkout `root` (made in `folder`) and what this grading run's sandboxes see."""
    from fer_utils.book.artifacts import default_cache

    root = Path(root).absolute()
    cache = default_cache().expanduser().resolve()  # the artefact cache the chapters use
    cache.mkdir(parents=True, exist_ok=True)
    venv = Path(sys.prefix).resolve()
    binds = [Bind(venv, venv)]
    base = Path(sys.base_prefix).resolve()
    if not base.is_relative_to("/usr"):
        binds.append(Bind(base, base))
    sample = (root / "data" / "sample").resolve()
    if sample.is_dir():
        binds.append(Bind(sample, sample))
    binds.append(Bind(cache, cache))
    hosts = Path(folder) / "hosts"  # `localhost` only: otter's kernel logs to a server on the sandbox's loopback
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n", encoding="utf-8")
    hosts.chmod(0o644)
    if isolation is Isolation.BWRAP:
        binds.append(Bind(hosts, Path("/etc/hosts")))
    inside = [b.target for b in binds if b.target.is_relative_to(root.resolve())]
    book = pristine_copy(root, folder, inside if isolation is Isolation.BWRAP else [], isolation is Isolation.NONE)
    book_at = root.resolve() if isolation is Isolation.BWRAP else book
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8"}
    env |= {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    env |= {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(book_at),
        "PYTHONDONTWRITEBYTECODE": "1",
        "FER_CACHE": str(cache),
        "USER": "student",  # a sandbox's own user has no name in /etc/passwd
        "LOGNAME": "student",
    }
    return Layout(book, book_at, venv / "bin" / "python", tuple(binds), env)


def check_isolation(isolation: Isolation) -> None:
    """SetupError, before any work, when bubblewrap is missing or cannot make a sandbox here."""
    if isolation is Isolation.NONE:
        return
    missing = [tool for tool in (BWRAP, "prlimit", "setpriv") if shutil.which(tool) is None]
    if missing:
        raise SetupError(
            f"grading needs {', '.join(missing)} to run each submission in a sandbox (Debian/Ubuntu: "
            f"apt-get install bubblewrap util-linux); {UNSAFE_OPTION} grades without one, and then a "
            "submission can read and change the checkout, the other submissions and the grades"
        )
    probe = [BWRAP, *_namespaces(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SetupError(
            f"bubblewrap cannot make a sandbox on this machine ({done.stderr.strip() or done.returncode}); "
            f"allow user namespaces, or run as root, or use {UNSAFE_OPTION} (a submission can then read and "
            "change the checkout, the other submissions and the grades)"
        )


def _namespaces() -> list[str]:
    """bubblewrap's options for new namespaces (a user namespace too when the grader is not root)."""
    options = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    return options + (["--unshare-user"] if os.geteuid() != 0 else [])


def own_tasks() -> int:
    """How many tasks (threads included) this user runs now: RLIMIT_NPROC counts them too."""
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            lines = (entry / "status").read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError):
            continue
        status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
        if int(status.get("Uid", "-1").split()[0]) == uid:
            count += int(status.get("Threads", "1").strip())
    return count


def _ancestors(path: Path, made: set[Path]) -> list[str]:
    """bubblewrap options making the folders above `path` (0755, so that the sandbox's user can pass)."""
    options = []
    for parent in reversed(path.parents):
        if parent != Path("/") and parent not in made:
            made.add(parent)
            options += ["--perms", "0755", "--dir", str(parent)]
    return options


def bwrap_command(
    argv: list[str], layout: Layout, binds: list[Bind], env: dict[str, str], cwd: Path, limits: Limits
) -> list[str]:
    """The bubblewrap command line that runs `argv` in a sandbox (see the module's docstring)."""
    command = [BWRAP, "--die-with-parent", "--new-session", *_namespaces()]
    if os.geteuid() == 0:
        command += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        command += ["--cap-add", "CAP_SETPCAP"]
    command += ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(name):
            command += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            command += ["--ro-bind", name, name]
    command += ["--perms", "0755", "--dir", "/etc"]  # passable by the sandbox's own user
    for name in ETC_FILES:
        command += ["--ro-bind-try", name, name]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--size", str(limits.disk_bytes), "--tmpfs", str(SANDBOX_TMP), "--chmod", "1777", str(SANDBOX_TMP)]
    command += ["--size", str(limits.disk_bytes // 4), "--tmpfs", "/dev/shm", "--chmod", "1777", "/dev/shm"]
    for name in (WORKDIR_NAME, HOME_NAME):
        command += ["--perms", "0777", "--dir", str(SANDBOX_TMP / name)]
    made = {SANDBOX_TMP, Path("/usr"), Path("/etc"), Path("/dev"), Path("/proc")}
    every = [Bind(layout.book, layout.book_at), *layout.binds, *binds]  # the layout's binds are read-only
    mounted: list[Path] = []
    for bind in sorted(every, key=lambda b: len(b.target.parts)):
        if not any(bind.target.is_relative_to(m) for m in mounted):
            command += _ancestors(bind.target, made)
        command += ["--bind" if bind.writable else "--ro-bind", str(bind.source), str(bind.target)]
        mounted.append(bind.target)
    command += ["--clearenv"]
    for name, value in {**layout.env, **env}.items():
        command += ["--setenv", name, value]
    command += ["--chdir", str(cwd), "--"]
    nproc = limits.processes
    if os.geteuid() == 0:
        uid = str(secrets.randbelow(SANDBOX_UIDS[1] - SANDBOX_UIDS[0]) + SANDBOX_UIDS[0])
        command += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
        command += ["--bounding-set=-all", "--no-new-privs", "--"]
    else:
        nproc += own_tasks()
    return [*command, "prlimit", f"--as={limits.memory_bytes}", "--core=0", f"--nproc={nproc}", "--", *argv]


def _plain_limits(limits: Limits) -> None:
    """The limits of an unsandboxed process (`Isolation.NONE`), set in the child before it runs."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Kept:
    """The first and the last `limit` bytes of a stream, in memory: what a sandbox prints never reaches the disk."""

    def __init__(self, limit: int) -> None:
        self.limit, self.head, self.tail, self.dropped = limit, bytearray(), bytearray(), False

    def add(self, data: bytes) -> None:
        """Keep `data` in the head while it has room, else in the tail, whose oldest bytes are dropped now and then
        (at twice `limit`: a flood costs its reading, not a copy of the tail per read)."""
        room = max(0, self.limit - len(self.head))
        self.head += data[:room]
        self.tail += data[room:]
        if len(self.tail) > 2 * self.limit:
            del self.tail[: -self.limit]
            self.dropped = True

    def whole(self) -> bytes | None:
        """The stream, or None when it was longer than `limit`."""
        return None if self.tail else bytes(self.head)

    def text(self) -> str:
        """The head and the last `limit` bytes as text, with a line where bytes were dropped between them."""
        gap = b"\n[... output dropped ...]\n" if self.dropped or len(self.tail) > self.limit else b""
        return (bytes(self.head) + gap + bytes(self.tail[-self.limit :])).decode("utf-8", "replace")


class Finished(NamedTuple):
    """How a sandboxed process ended: its exit code (None past its time limit), its stdout (None when over
    STDOUT_BYTES) and the first and last STDERR_BYTES of its stderr."""

    code: int | None
    stdout: bytes | None
    stderr: str


def drain(process: subprocess.Popen, streams: dict[int, Kept], deadline: float) -> None:
    """Read the process's pipes into `streams` until they close, `deadline`, or a quiet moment after it exited
    (a process it left behind, possible only without a sandbox, may hold a pipe open)."""
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < deadline:
            ready = selector.select(timeout=min(POLL_S, max(0.0, deadline - time.monotonic())))
            if not ready and process.poll() is not None:
                return
            for key, _ in ready:
                data = os.read(key.fd, 2**16)
                if data:
                    streams[key.fd].add(data)
                else:
                    selector.unregister(key.fd)


def run_sandboxed(
    argv: list[str],
    layout: Layout,
    isolation: Isolation,
    limits: Limits,
    binds: list[Bind],
    timeout_s: float,
    host_tmp: Path,
) -> Finished:
    """Run `argv` in a sandbox (or a plain child in `host_tmp`) for at most `timeout_s`; its output kept in memory."""
    if isolation is Isolation.BWRAP:
        env = {"HOME": str(SANDBOX_TMP / HOME_NAME), "TMPDIR": str(SANDBOX_TMP)}
        command = bwrap_command(list(argv), layout, list(binds), env, SANDBOX_TMP / WORKDIR_NAME, limits)
        popen_env, popen_cwd, preexec = None, None, None
    else:
        for name in (WORKDIR_NAME, HOME_NAME):
            (host_tmp / name).mkdir(parents=True, exist_ok=True)
        env = {"HOME": str(host_tmp / HOME_NAME), "TMPDIR": str(host_tmp)}
        command, popen_cwd = list(argv), host_tmp / WORKDIR_NAME
        popen_env = {**layout.env, **env}
        preexec = lambda: _plain_limits(limits)  # noqa: E731
    deadline = time.monotonic() + timeout_s
    stdout, stderr = Kept(STDOUT_BYTES), Kept(STDERR_BYTES)
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=popen_env,
        cwd=popen_cwd,
        start_new_session=True,
        preexec_fn=preexec,
    ) as process:
        try:
            drain(process, {process.stdout.fileno(): stdout, process.stderr.fileno(): stderr}, deadline)
            code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return Finished(code, stdout.whole(), stderr.text())
