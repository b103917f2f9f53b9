"""A real HTTP server on 127.0.0.1 for the download tests: files by URL path, HTTP Range, and faults on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler


@dataclass
class Site:
    """What the local server serves and what it saw: files by URL path, modes, Range headers."""

    files: dict[str, bytes] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)  # send half the body, then close
    ignore_range: set[str] = field(default_factory=set)  # answer 200 with the whole body
    ranges: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


def make_handler(site: Site) -> type[BaseHTTPRequestHandler]:
    """A request handler serving `site`, with HTTP Range support."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            site.ranges.append((path, self.headers.get("Range")))
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
            self.wfile.write(chunk)

    return Handler
