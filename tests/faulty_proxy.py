"""HTTP servers that registry tests run in a thread on 127.0.0.1 (ephemeral ports).

* ``FaultyProxy``: a reverse proxy in front of a real registry that answers 503 to
  the first N requests (optionally only those whose path matches a pattern), then
  forwards everything. It proves that retries work against a real registry.
* ``ScriptedServer``: a registry double whose every answer is given by a Python
  function, for what a real registry cannot be made to do (a bearer token server,
  a wrong digest, a flaky 503 with Retry-After).

Both are plain HTTP/1.1 with keep-alive, like a registry behind a load balancer.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

# Headers that describe one hop, not the message: never forwarded (RFC 9110 7.6.1).
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
}


@dataclass
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Docker and BuildKit probe HTTPS first: answer a TLS hello like a plain-HTTP
    # registry does (an HTTP/1.0 400), so they fall back to HTTP.
    default_request_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean; the servers record what they saw

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():  # Go clients repeat Accept: keep every value
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request = Request(self.command, self.path, headers, self._read_body())
        reply = self.server.answer(request)
        self.send_response(reply.status)
        names = {name.lower() for name in reply.headers}
        for name, value in reply.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if "content-length" not in names:  # a HEAD reply may state the resource's length
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Callable[[Request], Reply], tls: ssl.SSLContext | None, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.answer = answer
        self.tls = tls

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that refuse our certificate or hang up: tests
        provoke that. Anything else (a bug in a test's answer) is printed."""
        if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            super().handle_error(request, client_address)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is not None:
            # The handshake happens in the handler thread, on first read.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address


class ScriptedServer:
    """Answers every request with ``answer(request)``; records the requests it saw.

    With ``tls`` (a server-side SSLContext) it speaks HTTPS; ``host`` is the
    address it listens on.
    """

    def __init__(
        self,
        answer: Callable[[Request], Reply],
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.requests: list[Request] = []
        self._answer = answer
        self._server = _Server(self._record, tls, host)
        # A short poll interval makes stop() quick.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _record(self, request: Request) -> Reply:
        self.requests.append(request)
        return self._answer(request)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: usable as the registry part of a reference."""
        return f"{self._server.server_address[0]!s}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class FaultyProxy(ScriptedServer):
    """Forwards to ``upstream`` (``host:port``, plain HTTP) after ``failures`` 503s.

    Only requests whose path matches ``path_pattern`` (a regex, searched) count
    toward and receive the failures when it is given. ``retry_after`` adds that
    header to each 503. The Host header is forwarded unchanged, so the registry's
    Location headers point back at the proxy.
    """

    def __init__(
        self,
        upstream: str,
        failures: int = 2,
        path_pattern: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(self._proxy)
        self.upstream = upstream
        self.failures = failures
        self.path_pattern = re.compile(path_pattern) if path_pattern else None
        self.retry_after = retry_after
        self.failed: list[Request] = []
        self.forwarded: list[Request] = []
        self._lock = threading.Lock()

    def _proxy(self, request: Request) -> Reply:
        eligible = self.path_pattern is None or self.path_pattern.search(request.path)
        with self._lock:
            fail = bool(eligible) and len(self.failed) < self.failures
            (self.failed if fail else self.forwarded).append(request)
        if fail:
            headers = {"Content-Type": "application/json"}
            if self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected by FaultyProxy"}]}'
            return Reply(503, headers, body)
        return self._forward(request)

    def _forward(self, request: Request) -> Reply:
        connection = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers.pop("Content-Length", None)
            if request.body or request.method in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(request.body))
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            reply_headers = {name: value for name, value in response.getheaders() if name.lower() not in _HOP_BY_HOP}
            if request.method != "HEAD":
                reply_headers.pop("Content-Length", None)
                reply_headers.pop("content-length", None)
            return Reply(response.status, reply_headers, body)
        finally:
            connection.close()
