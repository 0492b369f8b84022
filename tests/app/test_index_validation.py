"""The one check of what a write or a query brings to the index (ids, metadata, an id twice,
vectors), used by the service at the door and by a backend's put for anything unchecked."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app.errors import InvalidInput
from app.index.backend import NewItem
from app.index.validation import CheckedItems, check_batch, checked, unit_vector


def test_a_batch_is_checked_once_and_completed_into_items_a_backend_takes_as_they_are():
    batch = check_batch(["a", "b"], [{"n": 1}, None])
    assert batch.metadata == ({"n": 1}, {})
    items = batch.items([np.ones(3), np.ones(3)], [b"png", None])
    assert isinstance(items, CheckedItems) and checked(items) is items  # not checked again
    assert [(item.id, item.metadata, item.source) for item in items] == [("a", {"n": 1}, b"png"), ("b", {}, None)]


@pytest.mark.parametrize(
    ("ids", "metadata", "words"),
    [
        (["a", "a"], [{}, {}], "items[1].id: 'a' appears twice"),
        (["ok", "../x"], [{}, {}], "items[1].id: invalid id"),
        (["a"], [{"x": float("inf")}], "items[0].metadata: holds Infinity"),
        (["a"], [[1]], "items[0].metadata: must be a JSON object"),
    ],
)
def test_a_bad_batch_names_the_item_and_the_rule(ids, metadata, words):
    with pytest.raises(InvalidInput, match=re.escape(words)):
        check_batch(ids, metadata)


def test_items_made_elsewhere_are_checked_when_put():
    with pytest.raises(InvalidInput, match="twice"):
        checked([NewItem("a", np.ones(3)), NewItem("a", np.ones(3))])
    assert [item.id for item in checked([NewItem("a", np.ones(3))])] == ["a"]


def test_unit_vector_normalizes_and_refuses_what_has_no_direction():
    assert np.allclose(unit_vector([3.0, 4.0], 2, "v"), [0.6, 0.8])
    assert np.allclose(unit_vector([1e300, 1e300], 2, "v"), [2**-0.5, 2**-0.5])  # finite, if large
    for bad, words in (([1.0], "size 1; the index holds 2"), ([0.0, 0.0], "zero"), ([np.nan, 1.0], "not finite")):
        with pytest.raises(InvalidInput, match=words):
            unit_vector(bad, 2, "v")
