"""What a request must pass before any route reads its body: the API key, then the size of the body.

Both are pure ASGI middleware, so they act on the request line and headers alone: a request without the
key is answered 401 without a byte of its body being read (however large or malformed it is), and a body
over its limit is refused with 413 from its Content-Length, or, streamed without one, as soon as the bytes
received pass the limit. Refusals use the one JSON error shape (services.http.errors).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import PayloadTooLarge, Unauthorized
from services.http.errors import error_response


def route_path(scope: Scope) -> str:
    """The path the routes see: without the prefix the app is mounted at (Serve's route_prefix)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class ApiKeyCheck:
    """With a key configured, every HTTP request but those to `public` paths needs `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, key: str | None, public: frozenset[str]) -> None:
        self.app = app
        self.key = None if key is None else key.encode()
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.key is None or route_path(scope) in self.public:
            await self.app(scope, receive, send)
            return
        scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.key):
            await self.app(scope, receive, send)
            return
        error = Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")
        await error_response(error, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)


@dataclass(frozen=True)
class BodyLimit:
    max_bytes: int
    setting: str  # named in the refusal, so the operator knows what to raise


class BodySizeLimit:
    """Refuses a request body over its route's limit (`limit_for(scope)`) with 413."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], BodyLimit]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit.max_bytes:
            await self._refuse(scope, receive, send, limit, int(declared))
            return
        received, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    over = True
                    raise _over(limit)  # ends the route's read; its answer to that is replaced below
            return message

        async def unless_over(message: Message) -> None:
            nonlocal started
            if over and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await self._refuse(scope, receive, send, limit, None)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: BodyLimit, size: int | None) -> None:
        await error_response(_over(limit, size), headers={"Connection": "close"})(scope, receive, send)


def _over(limit: BodyLimit, size: int | None = None) -> PayloadTooLarge:
    body = "request body" if size is None else f"request body of {size} bytes"
    return PayloadTooLarge(f"{body} is over the limit of {limit.max_bytes} bytes ({limit.setting})")
