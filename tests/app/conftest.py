"""App fixtures: apps built around the session's already-loaded `encoder` (see tests/conftest.py)."""

from __future__ import annotations

import os

import pytest
from apptools import make_settings
from fastapi.testclient import TestClient

from app.main import create_app


@pytest.fixture(autouse=True)
def _no_pcclip_env(monkeypatch):
    """Tests see only the settings they pass, never the developer's PCCLIP_* environment."""
    for name in list(os.environ):
        if name.startswith("PCCLIP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_client(encoder):
    """make_client(**settings) → a started TestClient on an app serving the session encoder."""
    clients: list[TestClient] = []

    def make(app=None, **overrides) -> TestClient:
        app = app or create_app(make_settings(**overrides), encoder=encoder)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def sdxl_dir(tmp_path_factory):
    """A tiny random SDXL saved like real weights (models.generation.tiny)."""
    from models.generation.tiny import build_tiny_sdxl

    folder = tmp_path_factory.mktemp("tiny-sdxl")
    build_tiny_sdxl(seed=0).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sdxl_pipe(sdxl_dir):
    """The saved pipeline loaded back once; apps get views of it (own slots, shared weights)."""
    from models.generation.pipeline import load_pipeline

    return load_pipeline(str(sdxl_dir), device="cpu")
