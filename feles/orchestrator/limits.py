"""Request admission before any body is read: authentication, known routes, and body size limits.

The order matters: a request without the token, or for a route that does not exist, is answered without
reading a byte of its body; an authenticated one is read up to its route's limit (also without
Content-Length) and answered 413 beyond it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Control messages (registration, ...) are small JSON documents.
DEFAULT_BODY_LIMIT = 64 * 1024


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    """The client went away before its body was complete (a worker killed mid-upload)."""


class Admission:
    """ASGI middleware: 401 unless `authorized(scope)`, 404 for unknown routes, 413 beyond `limit_for(scope)`.

    `limit_for` returns None for a request that matches no route: it is refused without reading its body.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[Scope], int | None],
        authorized: Callable[[Scope], bool] = lambda scope: True,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.authorized = authorized

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.authorized(scope):
            await _answer(send, 401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])
            return
        limit = self.limit_for(scope)
        if limit is None and _has_body(scope):
            await _answer(send, 404, "Not Found")
            return
        if limit is None:
            # Nothing to read: the router answers (404, or a redirect such as /ui/ -> /ui).
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject(send, limit)
            return
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            await _reject(send, limit)
            return
        except _Disconnected:
            return  # half a body is no request: never hand it to a handler (it would look malformed)
        await self.app(scope, _replay(body, receive), send)


def _has_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    return b"transfer-encoding" in headers or (length is not None and length.strip() not in (b"", b"0"))


def only_query(*names: str) -> Callable[[Request], None]:
    """A route dependency: 422 naming any query parameter the route does not take (a typo is never ignored)."""
    known = frozenset(names)

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            # The shape of FastAPI's own 422 (the one the OpenAPI document declares), one error per parameter.
            message = f"unknown query parameter; known: {', '.join(sorted(known)) or 'none'}"
            raise RequestValidationError(
                [{"type": "extra_forbidden", "loc": ("query", name), "msg": message, "input": None} for name in unknown]
            )

    return check


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reject(send: Send, limit: int) -> None:
    await _answer(send, 413, f"request body larger than {limit} bytes")


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                # The body was not read: the connection cannot carry another request.
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
