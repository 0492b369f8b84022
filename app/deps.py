"""Shared route dependencies as named aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.images import ImageLoader
from app.services.embedding import Embedder
from app.settings import Settings, get_settings
from app.state import LoadedModel, ModelSlot

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_slot(request: Request) -> ModelSlot:
    return request.app.state.model_slot


SlotDep = Annotated[ModelSlot, Depends(get_slot)]


def get_model(slot: SlotDep) -> LoadedModel:
    """The loaded model; `NotReady` (→ 503 with the reason) while loading or after a failure."""
    return slot.require()


ModelDep = Annotated[LoadedModel, Depends(get_model)]


def get_embedder(request: Request, model: ModelDep, settings: SettingsDep) -> Embedder:
    loader: ImageLoader = request.app.state.image_loader
    return Embedder(model, loader, settings)


EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
