"""The FastAPI application: `create_app(settings)`; `uvicorn app.main:app` serves the env config."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.engine import Loader, engine_slot, load_encoder
from app.errors import install_error_handlers
from app.generation.generator import PipelineLoader, generator_slot, load_sdxl
from app.hangup import HangUpMiddleware
from app.images import ImageLoader
from app.index.serving import index_slot
from app.limits import BodyLimitMiddleware, SchemaLimitsMiddleware
from app.metrics import Metrics, MetricsMiddleware
from app.openapi import document_limits
from app.pages import install_pages
from app.routes import classify, clip_back, embed, generate, index, rank, search, system, v1
from app.security import TokenBucket
from app.settings import Settings, get_settings
from models import Encoder

log = logging.getLogger(__name__)

DESCRIPTION = """\
PC-CLIP: CLIP whose text encoder was finetuned so that a sentence describing how image 1
differs from image 2 embeds near g(I1) − g(I2).

Images are sent as base64 (`{"b64": ...}`), as multipart uploads (`/embed/upload`,
`/classify/upload`), or — where the operator allows it — as public URLs (`{"url": ...}`).

An image collection can be indexed (`/index/items`) and searched with expressions over
embeddings (`/search`): "this image, but snowier" is `[{"id": ...}, {"difference": "snowier"}]`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    encoder: Encoder | None = None,
    loader: Loader = load_encoder,
    image_loader: ImageLoader | None = None,
    sdxl_loader: PipelineLoader = load_sdxl,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """Build the app. `encoder` installs an already-loaded model (tests); otherwise the
    lifespan loads `settings.model` with `loader` in a background thread, and `/ready` is 503
    until it is done. With `settings.sdxl_model`, `sdxl_loader` loads SDXL for `/generate`.
    `clock` is the rate limiter's (tests pass a fake one)."""
    settings = settings or get_settings()
    metrics = Metrics()
    images = image_loader or ImageLoader.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # 1. The model: its engine, now (`encoder`) or loaded in the background
        model = engine_slot(settings, images, encoder=encoder, loader=loader, on_batch=metrics.observe_batch)
        metrics.track_queue(lambda: engine.health().queue_depth if (engine := model.value) else 0)
        # 2. The index, opened for the model's fingerprint once the model is ready; a broken
        #    index fails alone, the model API keeps serving
        search_index = index_slot(settings, model)
        # 3. The generator (SDXL, when configured): it loads beside them, and waits for the
        #    model to settle before choosing who fills its text_encoder slot
        generator = generator_slot(settings, sdxl_loader, model)
        app.state.model_slot, app.state.index_slot, app.state.generator_slot = model, search_index, generator
        try:
            yield
        finally:
            for slot in (generator, search_index, model):  # the reverse of the startup order
                slot.close()

    app = FastAPI(
        title="pcclip",
        summary="PC-CLIP as a service: classify, compare and rank images by their differences.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # app.pages serves /docs and /redoc from shipped files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.rate_limiter = (
        TokenBucket(settings.rate_limit, settings.rate_burst, clock=clock) if settings.rate_limit else None
    )
    install_error_handlers(app)
    document_limits(app, settings)
    for module in (system, embed, classify, rank, index, search, generate, v1, clip_back):
        app.include_router(module.router)
    install_pages(app)
    _install_middleware(app, settings, metrics)
    return app


def _install_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    # Outermost first on the way in: count everything, then refuse oversized bodies.
    app.add_middleware(SchemaLimitsMiddleware, settings=settings)
    app.add_middleware(HangUpMiddleware)  # watches the channel once BodyLimitMiddleware has read the body
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origin_list:  # outermost: a browser's preflight is answered before any other check
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` — built on first access, so importing this module stays cheap.
    if name == "app":
        return create_app()
    raise AttributeError(name)
