"""A local HTTP receiver for FTPIPE_NOTIFY's tests: Apprise's `json://127.0.0.1:PORT/` posts land here."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """What arrived: each message's JSON body (title, message, ...) and raw bytes, in order."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[dict[str, Any]] = []
        self.raw: list[bytes] = []

    def url(self, secret: str = "hunter2-notify-password") -> str:
        """An Apprise URL with a password in it (what must never reach a message or a log)."""
        return f"json://ftpipe:{secret}@127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        return [str(m.get("title", "")) for m in self.messages]


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A ThreadingHTTPServer on 127.0.0.1 that answers every POST 200 and keeps it."""
    got = Receiver(0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            got.raw.append(body)
            got.messages.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def refused_url() -> str:
    """An Apprise URL whose port refuses connections (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"json://ftpipe:hunter2-notify-password@127.0.0.1:{port}/hook"
