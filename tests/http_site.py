"""A real HTTP server on 127.0.0.1 for the download tests: files by URL path, HTTP Range, and faults on demand."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

TRICKLE_BYTES = 1024  # what a slow path sends at a time
QUOTA_TEXT = b"This repository exceeded its LFS budget. The account responsible for the budget should increase it."


@dataclass
class Site:
    """What the local server serves and what it saw: files by URL path, modes, Range headers."""

    files: dict[str, bytes] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)  # send half the body, then close
    ignore_range: set[str] = field(default_factory=set)  # answer 200 with the whole body
    answers: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)  # path: (status, Content-Type, body)
    trickle: dict[str, float] = field(default_factory=dict)  # path: seconds between TRICKLE_BYTES blocks
    endless: set[str] = field(default_factory=set)  # 200, no Content-Length, zeros until the client hangs up
    ranges: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


def over_quota(site: Site, path: str) -> None:
    """Answer `path` as GitHub's LFS media endpoint does once the repository's LFS budget is spent."""
    site.answers[path] = (403, "text/plain; charset=utf-8", QUOTA_TEXT)


def lfs_pointer(data: bytes) -> bytes:
    """The Git LFS pointer a git tree holds for `data` (what a repository's archive or raw file gives)."""
    import hashlib

    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n".encode()


def make_handler(site: Site) -> type[BaseHTTPRequestHandler]:
    """A request handler serving `site`, with HTTP Range support."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            try:
                self.answer()
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: what the tests ask for
                self.close_connection = True

        def answer(self) -> None:
            path = self.path.split("?", 1)[0]
            site.ranges.append((path, self.headers.get("Range")))
            if path in site.answers:
                status, kind, body = site.answers[path]
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if path in site.endless:
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                while True:
                    self.wfile.write(bytes(1 << 16))
            body = site.files.get(path)
            if body is None:
                self.send_error(404)
                return
            start, status = 0, 200
            header = self.headers.get("Range")
            if header and path not in site.ignore_range:
                start = int(header.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            chunk = body[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(chunk)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            if path in site.truncate:
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if path in site.trickle:
                for at in range(0, len(chunk), TRICKLE_BYTES):
                    self.wfile.write(chunk[at : at + TRICKLE_BYTES])
                    self.wfile.flush()
                    time.sleep(site.trickle[path])
                return
            self.wfile.write(chunk)

    return Handler
