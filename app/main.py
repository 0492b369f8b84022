"""The FastAPI application: `create_app(settings)`; `uvicorn app.main:app` serves the env config."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.errors import install_error_handlers
from app.images import ImageLoader
from app.limits import BodyLimitMiddleware
from app.metrics import Metrics, MetricsMiddleware
from app.routes import classify, embed, rank, system
from app.security import TokenBucket
from app.settings import Settings, get_settings
from app.state import Loader, ModelSlot, load_encoder
from models import Encoder

log = logging.getLogger(__name__)

DESCRIPTION = """\
PC-CLIP: CLIP whose text encoder was finetuned so that a sentence describing how image 1
differs from image 2 embeds near g(I1) − g(I2).

Images are sent as base64 (`{"b64": ...}`), as multipart uploads (`/embed/upload`,
`/classify/upload`), or — where the operator allows it — as public URLs (`{"url": ...}`).
"""


def create_app(
    settings: Settings | None = None,
    *,
    encoder: Encoder | None = None,
    loader: Loader = load_encoder,
    image_loader: ImageLoader | None = None,
) -> FastAPI:
    """Build the app. `encoder` installs an already-loaded model (tests); otherwise the
    lifespan loads `settings.model` with `loader` in a background thread, and `/ready` is 503
    until it is done."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        slot = ModelSlot(settings, loader, on_batch=metrics.observe_batch)
        app.state.model_slot = slot
        metrics.track_queue(lambda: slot.queue_depth)
        slot.start(encoder)
        try:
            yield
        finally:
            slot.close()

    app = FastAPI(
        title="pcclip",
        summary="PC-CLIP as a service: classify, compare and rank images by their differences.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.dependency_overrides[get_settings] = lambda: settings
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.image_loader = image_loader or ImageLoader.from_settings(settings)
    app.state.rate_limiter = TokenBucket(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None

    install_error_handlers(app)
    for module in (system, embed, classify, rank):
        app.include_router(module.router)
    # Outermost first on the way in: count everything, then refuse oversized bodies.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` — built on first access, so importing this module stays cheap.
    if name == "app":
        return create_app()
    raise AttributeError(name)
