"""Client connections of `pcclip serve`: a cap on how many are open, a deadline for each request
head, bounded logging when the process runs out of file descriptors.

uvicorn's h11 protocol keeps a connection that never completes a request head open forever (an
idle socket, or a "slowloris" client trickling header bytes), and accepts connections until
`accept()` fails with "Too many open files", which asyncio then logs thousands of times a second.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

RESERVED_FDS = 256  # file descriptors beside client connections: model and index files, logs, URL fetches
LOG_EVERY_S = 10.0  # one line per this many seconds about refused connections or failing accepts


class LogThrottle:
    """Reports events through `emit(count)`: the first at once, then at most one report per `every`
    seconds with the events since the last; a count held back is reported when its interval ends,
    so none is lost. `later(delay, callback)` schedules (default: the running event loop's)."""

    def __init__(
        self,
        emit: Callable[[int], None],
        every: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        later: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        self.emit = emit
        self.every = every
        self._clock = clock
        self._later = later or (lambda delay, callback: asyncio.get_running_loop().call_later(delay, callback))
        self._last: float | None = None
        self._held = 0
        self._flush_due = False

    def event(self) -> None:
        self._held += 1
        now = self._clock()
        if self._last is None or now - self._last >= self.every:
            self._flush()
        elif not self._flush_due:
            self._flush_due = True
            self._later(self._last + self.every - now, self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self._held:
            self.emit(self._held)
            self._held, self._last = 0, self._clock()


def _plain_response(status: str, headers: str, message: str) -> bytes:
    body = message.encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n{headers}\r\n"
    ).encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with at most `max_connections` open and `head_timeout_s` for a request head.

    The head deadline starts when a connection opens, or with the first byte of the next request
    on a kept-alive connection (between requests uvicorn's keep-alive timeout applies), and does
    not move while bytes trickle in. A connection over the cap gets a 503 and is closed at once.
    """

    def __init__(
        self, *args: Any, max_connections: int, head_timeout_s: float, refusals: LogThrottle, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.head_timeout_s = head_timeout_s
        self.refusals = refusals  # one for the server: its log line counts every refused connection
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self.transport = transport  # connection_lost closes it (uvicorn's)
            self._refuse()
            return
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        """Arm the deadline when a head is awaited (a new connection, or bytes of the next request:
        uvicorn ends its keep-alive wait on any byte); stop it once the head is in."""
        awaiting_head = self.conn.their_state is h11.IDLE
        if awaiting_head and self._head_deadline is None and not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_timed_out)
        elif not awaiting_head:
            self._stop_head_deadline()

    def _stop_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self.conn.trailing_data[0]:  # part of a head came: say why the connection ends
            message = f"request head not complete within {self.head_timeout_s:g} s (PCCLIP_HEAD_TIMEOUT_S)"
            self.transport.write(_plain_response("408 Request Timeout", "", message))
        self.transport.close()

    def _refuse(self) -> None:
        message = f"{len(self.connections)} connections open, the most this server takes (PCCLIP_MAX_CONNECTIONS)"
        self.transport.write(_plain_response("503 Service Unavailable", "retry-after: 1\r\n", message))
        self.transport.close()
        self.refusals.event()


def guarded_protocol(max_connections: int, head_timeout_s: float) -> type[asyncio.Protocol]:
    """The protocol class for `uvicorn.run(http=...)` (uvicorn instantiates it per connection)."""

    def report(count: int) -> None:
        log.warning("refused %d new connection(s) at PCCLIP_MAX_CONNECTIONS=%d open", count, max_connections)

    return functools.partial(  # type: ignore[return-value]
        GuardedH11Protocol,
        max_connections=max_connections,
        head_timeout_s=head_timeout_s,
        refusals=LogThrottle(report),
    )


class AcceptErrorFilter(logging.Filter):
    """For the `asyncio` logger: its "socket.accept() out of system resource" records (a traceback
    per failed accept, thousands a second) become one line per LOG_EVERY_S with a count and a hint."""

    def __init__(self) -> None:
        super().__init__()
        self.throttle = LogThrottle(self._report)
        self._error: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("socket.accept() out of system resource"):
            return True
        self._error = record.exc_info[1] if record.exc_info else None
        self.throttle.event()
        return False

    def _report(self, count: int) -> None:
        log.error(
            "%d accept() call(s) failed (%s): lower PCCLIP_MAX_CONNECTIONS or raise the open-files limit (ulimit -n)",
            count,
            self._error,
        )


def fit_open_files_limit(max_connections: int) -> str | None:
    """Raise the soft RLIMIT_NOFILE so that `max_connections` fit (up to the hard limit); a warning
    when they still do not."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + RESERVED_FDS
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target >= needed:
        log.info("open-files limit raised from %d to %d for PCCLIP_MAX_CONNECTIONS=%d", soft, target, max_connections)
        return None
    return (
        f"PCCLIP_MAX_CONNECTIONS={max_connections} needs about {needed} open files, but this process may open "
        f"only {target} (hard limit, `ulimit -Hn`): beyond about {target - RESERVED_FDS} connections accepts fail. "
        f"Lower PCCLIP_MAX_CONNECTIONS or raise the hard limit."
    )
