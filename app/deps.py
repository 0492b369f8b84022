"""Shared route dependencies as named aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.generation.jobs import JobManager
from app.generation.slot import GeneratorSlot
from app.images import ImageLoader
from app.index.backend import IndexBackend
from app.index.slot import IndexSlot
from app.services.embedding import Embedder
from app.settings import Settings
from app.state import LoadedModel, ModelSlot


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (not a dependency override: FastAPI re-analyses an
    overridden dependency's signature on every request)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


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


def get_index_slot(request: Request) -> IndexSlot:
    return request.app.state.index_slot


IndexSlotDep = Annotated[IndexSlot, Depends(get_index_slot)]


def get_index(slot: IndexSlotDep) -> IndexBackend:
    """The open index; `NotReady` (→ 503 with the reason) otherwise."""
    return slot.require()


IndexDep = Annotated[IndexBackend, Depends(get_index)]


def get_generator_slot(request: Request) -> GeneratorSlot:
    return request.app.state.generator_slot


GeneratorSlotDep = Annotated[GeneratorSlot, Depends(get_generator_slot)]


def get_jobs(slot: GeneratorSlotDep) -> JobManager:
    """The job manager; 503 with the reason when generation is unavailable or not loaded yet."""
    return slot.require()


JobsDep = Annotated[JobManager, Depends(get_jobs)]
