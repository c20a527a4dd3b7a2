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

import contextlib
import http.client
import re
import socket
import ssl
import struct
import sys
import threading
import time
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
    # Faults in the answer itself: ``cut`` sends only that many bytes of the body (the
    # Content-Length still says all of it), then closes the connection, with a TCP
    # reset when ``reset``; ``reset`` alone resets instead of answering; ``delay``
    # waits that many seconds between the headers and the body.
    cut: int | None = None
    reset: bool = False
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Docker and BuildKit probe HTTPS first: answer a TLS hello like a plain-HTTP
    # registry does (an HTTP/1.0 400), so they fall back to HTTP.
    default_request_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean; the servers record what they saw

    _was_reset = False

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), as a crashing or restarting server does."""
        self._was_reset = True
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def finish(self) -> None:
        if not self._was_reset:
            super().finish()

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
        early = self.server.early_reset
        if early is not None and early(self.command, self.path, headers):
            self.rfile.read(int(self.headers.get("Content-Length") or 0) // 2)  # half the upload, then a reset
            self._reset()
            return
        request = Request(self.command, self.path, headers, self._read_body())
        reply = self.server.answer(request)
        if reply.reset and reply.cut is None:
            self._reset()
            return
        self.send_response(reply.status)
        names = {name.lower() for name in reply.headers}
        for name, value in reply.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if "content-length" not in names:  # a HEAD reply may state the resource's length
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.delay:
            self.wfile.flush()
            time.sleep(reply.delay)
        if self.command != "HEAD":
            self.wfile.write(reply.body if reply.cut is None else reply.body[: reply.cut])
        if reply.cut is not None:
            self.wfile.flush()
            if reply.reset:
                self._reset()
            else:
                self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Callable[[Request], Reply], tls: ssl.SSLContext | None, host: str) -> None:
        super().__init__((host, 0), _Handler)
        # accept() with a time limit: once in the suite, serve_forever's thread sat in a
        # blocking accept() after select() had called the socket readable, with no
        # connection to take, and stop() (shutdown) waited for it for ever. A timeout is an
        # OSError, which serve_forever ignores before it looks again.
        self.socket.settimeout(1.0)
        self.answer = answer
        self.tls = tls
        # (method, path, headers) -> whether to read half the request body and reset the connection
        self.early_reset: Callable[[str, str, Mapping[str, str]], bool] | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that refuse our certificate or hang up: tests
        provoke that. Anything else (a bug in a test's answer) is printed."""
        if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError | ValueError):
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
    """Forwards to ``upstream`` (``host:port``, plain HTTP), with faults.

    The first ``failures`` requests whose path matches ``path_pattern`` (a regex,
    searched; all when None) and whose method is in ``methods`` (all when empty)
    get the fault ``fault``; everything else is forwarded:

    * ``status``: an answer of ``status`` (503 by default), with ``Retry-After:
      retry_after`` when given;
    * ``reset``: the registry's answer, cut after half its body by a TCP reset;
    * ``truncate``: the same, cut by an orderly close (Content-Length says more);
    * ``slow``: the registry's answer, its body ``delay`` seconds after the headers;
    * ``garble``: the registry's answer with the second half of its body blanked
      (same length, so invalid JSON and a wrong digest);
    * ``wrong-digest``: the registry's answer with another Docker-Content-Digest;
    * ``reset-upload``: half the request body is read, then a TCP reset;
    * ``down``: from the first such request on, every request (any path) is
      reset for ``down_for`` seconds, as while a registry restarts.

    ``agent``: only requests whose User-Agent contains it are eligible (e.g.
    ``buildspec/``: the Docker daemon reads what BuildKit pushed, through the same
    paths).

    The Host header is forwarded unchanged, so the registry's Location headers
    point back at the proxy.
    """

    FAULTS = ("status", "reset", "truncate", "slow", "garble", "wrong-digest", "reset-upload", "down")

    def __init__(
        self,
        upstream: str,
        failures: int = 2,
        path_pattern: str | None = None,
        retry_after: int | None = None,
        *,
        status: int = 503,
        methods: tuple[str, ...] = (),
        fault: str = "status",
        delay: float = 0.0,
        down_for: float = 0.0,
        agent: str = "",
        body: bytes | None = None,
    ) -> None:
        super().__init__(self._proxy)
        if fault not in self.FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self.upstream = upstream
        self.failures = failures
        self.path_pattern = re.compile(path_pattern) if path_pattern else None
        self.retry_after = retry_after
        self.status = status
        self.methods = methods  # only these methods fail (all when empty)
        self.fault = fault
        self.delay = delay
        self.down_for = down_for
        self.agent = agent
        self.body = body  # of the ``status`` answers (default: an UNAVAILABLE error)
        self.down_until = 0.0
        self.failed: list[Request] = []
        self.forwarded: list[Request] = []
        self._lock = threading.Lock()
        self._server.early_reset = self._early_reset

    def _eligible(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), "")
        return bool(self.path_pattern is None or self.path_pattern.search(path)) and (
            not self.methods or method in self.methods) and self.agent in agent

    def _take(self, request: Request) -> bool:
        """Whether this request gets the fault (counting it)."""
        with self._lock:
            fail = self._eligible(request.method, request.path, request.headers) and len(self.failed) < self.failures
            (self.failed if fail else self.forwarded).append(request)
        return fail

    def _early_reset(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        if self.fault == "down":
            with self._lock:
                now = time.monotonic()
                if not self.down_until and self._eligible(method, path, headers):
                    self.down_until = now + self.down_for
                if now < self.down_until:
                    self.failed.append(Request(method, path, {}, b""))
                    return True
            return False
        if self.fault == "reset-upload":
            return self._take(Request(method, path, headers, b""))
        return False

    def _proxy(self, request: Request) -> Reply:
        if self.fault in ("down", "reset-upload"):
            with self._lock:
                self.forwarded.append(request)
            return self._forward(request)
        if not self._take(request):
            return self._forward(request)
        if self.fault == "status":
            headers = {"Content-Type": "application/json"}
            if self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
            body = self.body or b'{"errors":[{"code":"UNAVAILABLE","message":"injected by FaultyProxy"}]}'
            return Reply(self.status, headers, body)
        reply = self._forward(request)
        half = len(reply.body) // 2
        if self.fault in ("reset", "truncate"):
            reply.headers["Content-Length"] = str(len(reply.body))
            return Reply(reply.status, reply.headers, reply.body, cut=half, reset=self.fault == "reset")
        if self.fault == "slow":
            reply.headers["Content-Length"] = str(len(reply.body))
            return Reply(reply.status, reply.headers, reply.body, delay=self.delay)
        if self.fault == "garble":
            return Reply(reply.status, reply.headers, reply.body[:half] + b" " * (len(reply.body) - half))
        for name in list(reply.headers):  # wrong-digest
            if name.lower() == "docker-content-digest":
                reply.headers[name] = "sha256:" + "0" * 64
        return reply

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
