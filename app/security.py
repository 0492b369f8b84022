"""Optional Bearer API key (constant-time compare) and a per-key token-bucket rate limit."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import Overloaded, Unauthorized
from app.settings import Settings

bearer = HTTPBearer(auto_error=False, description="The server's API key (PCCLIP_API_KEY).")


class TokenBucket:
    """Per-key buckets of `burst` tokens refilled at `rate` per second; a request takes one."""

    MAX_KEYS = 10_000  # full buckets are forgotten beyond this many keys

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > self.MAX_KEYS:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]


def _key_id(token: bytes) -> str:
    """Bucket key for an API key; the key itself is not kept in memory tables."""
    return "key:" + hashlib.sha256(token).hexdigest()[:16]


def key_matches(given: bytes, expected: bytes) -> bool:
    """Constant-time in the content *and* the length of `given`: fixed-size digests are compared
    (`hmac.compare_digest` on the raw keys returns early when the lengths differ)."""
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


async def require_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Router dependency of the model endpoints: 401 without the right key, 429 over the rate.

    Only the `Authorization: Bearer` header counts (scheme case-insensitive); a key in the
    query string or a cookie is ignored. (Settings refuse an empty key at startup.)
    """
    settings: Settings = request.app.state.settings
    limiter: TokenBucket | None = request.app.state.rate_limiter
    client = "client:" + (request.client.host if request.client else "unknown")
    if settings.api_key is not None:
        expected = settings.api_key.get_secret_value().encode()
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes as sent,
        # so a UTF-8 key sent as UTF-8 matches.
        given = credentials.credentials.encode("latin-1") if credentials is not None else None
        if given is None or not key_matches(given, expected):
            # Failed attempts spend the client address's own bucket: guessing is rate-limited
            # too, without touching the buckets of the real keys.
            _take(limiter, "failed-" + client)
            raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")
        _take(limiter, _key_id(given))
    else:
        _take(limiter, client)


def _take(limiter: TokenBucket | None, key: str) -> None:
    if limiter is not None:
        wait = limiter.take(key)
        if wait > 0:
            raise Overloaded(f"rate limit of {limiter.rate:g} requests/s exceeded; retry later", retry_after=wait)


AccessDep = Depends(require_access)
