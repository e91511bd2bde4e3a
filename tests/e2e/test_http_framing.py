"""Message framing the server accepts from proxies: a body with both Content-Length and Transfer-Encoding.

Prism's proxy (and other proxies) stream an upload with both headers. RFC 9112 section 6.1 lets a server read
such a body by Transfer-Encoding; httptools refused it with a plain-text 400 that no client can parse.
"""

from __future__ import annotations

import socket

from batchscore_server import RunningServer
from tests.e2e.conftest import login


def _exchange(server: RunningServer, head: str, body: bytes) -> bytes:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(head.encode() + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_a_chunked_upload_that_also_names_a_length_is_read_by_its_chunks(server: RunningServer) -> None:
    token = login(server)["access_token"]
    line = b'{"hp":1.0,"wt":2.0}\n'
    chunked = f"{len(line):x}\r\n".encode() + line + b"\r\n0\r\n\r\n"
    head = (
        "POST /api/noSuchService/v1/batch HTTP/1.1\r\n"
        f"Host: {server.url.removeprefix('http://')}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/x-ndjson\r\n"
        f"Content-Length: {len(line)}\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    )

    answer = _exchange(server, head, chunked)

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 404 Not Found", answer[:300]
    assert b"content-type: application/json" in rest.lower()
