"""The behavioural checks of `index_checks` over both backends, each opened the way the server
opens it (`open_backend` from the settings): FAISS in a tmp folder, Milvus on one Milvus Lite file
per module (a collection per test). What only one backend has is tested in test_index_store.py
and test_index_milvus.py."""

from __future__ import annotations

import index_checks
import numpy as np
import pytest
from apptools import make_settings
from index_checks import BACKENDS, DIM, backend_settings, milvus_lite  # noqa: F401 — a fixture

from app.index import open_backend

FINGERPRINT = "f" * 64


@pytest.fixture(params=BACKENDS)
def open_index(request, tmp_path):
    """open_index(fingerprint=..., embed_dim=...) → the backend opened on this test's one place."""
    settings = make_settings(index_dir=tmp_path / "index", **backend_settings(request))

    def opened(fingerprint=FINGERPRINT, embed_dim=DIM):
        return open_backend(settings, fingerprint=fingerprint, embed_dim=embed_dim, spec="tiny")

    return opened


@pytest.fixture
def index(open_index):
    with open_index() as opened:
        yield opened


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _named(check):
    return check.__name__.removeprefix("check_")


@pytest.mark.parametrize(
    "check",
    [
        index_checks.check_put_upsert_get,
        index_checks.check_vectors_and_delete,
        index_checks.check_bad_input_refused,
        index_checks.check_search_order_exclude_min_score,
        index_checks.check_every_filter_operator,
        index_checks.check_numbers_are_equal_by_value,
    ],
    ids=_named,
)
def test_an_open_backend(check, index, rng):
    check(index, rng)


@pytest.mark.parametrize(
    "check",
    [
        index_checks.check_writes_survive_close_and_reopen,
        index_checks.check_another_model_is_refused,
        index_checks.check_concurrent_readers_and_writers,
    ],
    ids=_named,
)
def test_a_backend_opened_again(check, open_index, rng):
    check(open_index, rng)


def test_the_settings_choose_the_backend(index):
    described = index.describe()
    assert described["backend"] in ("faiss", "milvus") and described["size"] == 0
    assert described["fingerprint"] == FINGERPRINT and described["embed_dim"] == DIM
