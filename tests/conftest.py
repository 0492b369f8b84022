"""Shared fixtures: the real embedded base model, loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def encoder():
    """`tiny-base` on CPU: the shipped image tower with the pip-shipped MiniLM text tower."""
    from models import create_model

    return create_model("tiny-base", device="cpu")
