"""Prometheus metrics: requests by route and status, latency, batch sizes, queue depth.

Each app has its own registry (several apps live in one test process).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http import HTTPMethod

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pcclip_requests", "HTTP requests answered.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "pcclip_request_duration_seconds",
            "Time from request to the end of the response.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "pcclip_batch_size",
            "Items per forward pass of the micro-batcher.",
            ["kind"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "pcclip_batch_duration_seconds",
            "Time of one forward pass.",
            ["kind"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.queue_depth = Gauge("pcclip_queue_depth", "Items waiting for the model.", registry=self.registry)

    def observe_batch(self, kind: str, size: int, seconds: float) -> None:
        self.batch_size.labels(kind).observe(size)
        self.batch_seconds.labels(kind).observe(seconds)

    def track_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)


class MetricsMiddleware:
    """Counts every HTTP response by route template (not raw path: bounded label values).

    A client that hangs up before its answer began counts as status 499 (as nginx logs it), not
    as the 500 of a request that ended without a response: 5xx are the server's own failures.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: int | None = None
        hung_up = False  # the client left before the response started

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def receive_noting_disconnect() -> Message:
            nonlocal hung_up
            message = await receive()
            hung_up = hung_up or (message["type"] == "http.disconnect" and status is None)
            return message

        try:
            await self.app(scope, receive_noting_disconnect, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            # Label values must be bounded: any token is a valid HTTP method, so others count as "other".
            method = scope["method"] if scope["method"] in HTTPMethod.__members__ else "other"
            label = "499" if hung_up else str(status or 500)
            self.metrics.requests.labels(method, route, label).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)
