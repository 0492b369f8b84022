"""Request limits around the app: the body size (→ 413), enforced before the app reads the
body; and the settings the request schemas read their limits from (`app.schemas.limits`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_response
from app.schemas.limits import serving
from app.settings import Settings


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes`: at once from Content-Length, else while streaming.

    The body is read here, up to the limit, and replayed to the app, so the app never sees a
    partial body and a too-large request never reaches a route.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body over {self.max_bytes} bytes (PCCLIP_MAX_BODY_BYTES)"
        await error_response(scope["path"], 413, message)(scope, receive, send)


class SchemaLimitsMiddleware:
    """Validates every request under `settings`: the schemas' bounds (`app.schemas.limits`) are
    this app's, not another app's of the same process."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with serving(self.settings):
            await self.app(scope, receive, send)
