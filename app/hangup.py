"""A request whose client has hung up stops waiting for the model, and its queued work is dropped.

A client that gives up (its timeout, a closed tab) before its answer began leaves its images and
texts queued for the model; computed, their answers are thrown away, and under overload that work
is what makes the next clients give up too. `HangUpMiddleware` learns of the hang-up from the ASGI
channel once the app has read the request's body (after it, the server sends nothing else on it);
`answer`, what the batcher's callers await, then cancels the request's job — the batcher skips a
cancelled job, or throws away the rows of one already running — and raises `ClientGone`. Nothing
else is interrupted: only a wait for the model ends this way, never a write half done.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ClientGone

T = TypeVar("T")


class HangUpWatch:
    """One request's ASGI receive channel: the body as it comes, then watched for the hang-up."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._body_read = False
        self._after_body: asyncio.Future[Message] | None = None  # the channel's next message

    async def receive(self) -> Message:
        """The app's receive."""
        if self._body_read:
            return await asyncio.shield(self._next_message())
        message = await self._receive()
        self._body_read = message["type"] == "http.request" and not message.get("more_body", False)
        return message

    def hang_up(self) -> asyncio.Future[Message] | None:
        """Done with the channel's next message, `http.disconnect` when the client hangs up;
        None while the app has not read the whole body (there is nothing to watch yet)."""
        return self._next_message() if self._body_read else None

    def _next_message(self) -> asyncio.Future[Message]:
        if self._after_body is None:
            self._after_body = asyncio.ensure_future(self._receive())
        return self._after_body

    def close(self) -> None:
        if self._after_body is not None and not self._after_body.done():
            self._after_body.cancel()


_current: ContextVar[HangUpWatch | None] = ContextVar("pcclip_hang_up_watch", default=None)


class HangUpMiddleware:
    """Watches each HTTP request's channel for its client hanging up (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = HangUpWatch(receive)
        token = _current.set(watch)
        try:
            await self.app(scope, watch.receive, send)
        finally:
            _current.reset(token)
            watch.close()


async def answer(job: Future[T]) -> T:
    """The result of a batcher `job`, unless the client of the request being served hangs up
    first: then the job is cancelled and `ClientGone` raised."""
    result = asyncio.wrap_future(job)  # cancelling it cancels the job
    watch = _current.get()
    hang_up = watch.hang_up() if watch is not None else None
    if hang_up is None:
        return await result
    try:
        either: set[asyncio.Future[Any]] = {result, hang_up}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not result.done() and _is_disconnect(hang_up):
            raise ClientGone("the client hung up before its answer")
        return await result
    finally:
        if not result.done():
            result.cancel()


def _is_disconnect(message: asyncio.Future[Message]) -> bool:
    return message.done() and not message.cancelled() and message.exception() is None and (
        message.result()["type"] == "http.disconnect"
    )
