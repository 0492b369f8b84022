"""Shared route dependencies as named aliases.

Each is `async def` although none awaits: FastAPI runs a plain `def` dependency in its
threadpool, a thread hop per dependency per request that cost more CPU than the whole
dependency (see README, "Performance against a peer")."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.engine import Engine
from app.generation.generator import Generator
from app.generation.jobs import JobManager
from app.index.backend import IndexBackend
from app.settings import Settings
from app.slot import Slot


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (not a dependency override: FastAPI re-analyses an
    overridden dependency's signature on every request)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_model_slot(request: Request) -> Slot[Engine]:
    return request.app.state.model_slot


ModelSlotDep = Annotated[Slot[Engine], Depends(get_model_slot)]


async def get_engine(slot: ModelSlotDep) -> Engine:
    """The engine; `NotReady` (→ 503 with the reason) while the model loads or after a failure."""
    return slot.require()


EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_index_slot(request: Request) -> Slot[IndexBackend]:
    return request.app.state.index_slot


IndexSlotDep = Annotated[Slot[IndexBackend], Depends(get_index_slot)]


async def get_index(slot: IndexSlotDep) -> IndexBackend:
    """The open index; `NotReady` (→ 503 with the reason) otherwise."""
    return slot.require()


IndexDep = Annotated[IndexBackend, Depends(get_index)]


async def get_generator_slot(request: Request) -> Slot[Generator]:
    return request.app.state.generator_slot


GeneratorSlotDep = Annotated[Slot[Generator], Depends(get_generator_slot)]


async def get_jobs(slot: GeneratorSlotDep) -> JobManager:
    """The job manager; 503 with the reason when generation is unavailable or not loaded yet."""
    return slot.require().jobs


JobsDep = Annotated[JobManager, Depends(get_jobs)]
