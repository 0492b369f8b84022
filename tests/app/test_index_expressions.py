"""The combination rule, proven on handmade embeddings: q = normalize(Σ wᵢ · v̂ᵢ), score = q · x̂,
contributions = wᵢ · cos(vᵢ, x), Σ contributions = score · ‖Σ wᵢ v̂ᵢ‖."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.index import NewItem


@pytest.fixture
def basis(encoder):
    """e(i): the i-th unit axis of the model's embedding space."""

    def e(*coefficients: float) -> np.ndarray:
        v = np.zeros(encoder.embed_dim, dtype=np.float32)
        v[: len(coefficients)] = coefficients
        return v

    return e


@pytest.fixture
def indexed(client, basis):
    """Axis items a = e0, b = e1, c = e2 (stored with norms ≠ 1: the store normalizes), and mixtures."""
    store = client.app.state.index_slot.require()
    store.put(
        [
            NewItem("a", basis(3.0)),
            NewItem("b", basis(0, 0.5)),
            NewItem("c", basis(0, 0, 2.0)),
            NewItem("a+b", basis(1, 1)),
            NewItem("a+2b", basis(1, 2)),
            NewItem("a-b", basis(1, -1)),
            NewItem("b+c", basis(0, 1, 1)),
        ]
    )
    return client


def search(client, terms, **options):
    response = client.post("/search", json={"terms": terms, "include_query_items": True, "k": 10, **options})
    assert response.status_code == 200, response.text
    return {h["id"]: h for h in response.json()["hits"]}


def test_terms_are_normalized_so_only_weights_count(indexed):
    # a is stored with norm 3 and b with norm 0.5, yet a + b lands exactly on normalize(e0 + e1).
    hits = search(indexed, [{"id": "a"}, {"id": "b"}])
    assert max(hits, key=lambda i: hits[i]["score"]) == "a+b"
    assert hits["a+b"]["score"] == pytest.approx(1.0, abs=1e-6)
    assert hits["a"]["score"] == pytest.approx(1 / math.sqrt(2), abs=1e-6)


def test_weights_scale_each_term(indexed):
    hits = search(indexed, [{"id": "a"}, {"id": "b", "weight": 2}])
    assert max(hits, key=lambda i: hits[i]["score"]) == "a+2b"
    assert hits["a+2b"]["score"] == pytest.approx(1.0, abs=1e-6)
    # q = (e0 + 2 e1)/√5: cos with a+b = 3/√10, with a-b = −1/√10
    assert hits["a+b"]["score"] == pytest.approx(3 / math.sqrt(10), abs=1e-6)
    assert hits["a-b"]["score"] == pytest.approx(-1 / math.sqrt(10), abs=1e-6)


def test_a_negative_weight_moves_away(indexed):
    hits = search(indexed, [{"id": "a"}, {"id": "b", "weight": -1}])
    assert max(hits, key=lambda i: hits[i]["score"]) == "a-b"
    assert hits["a-b"]["score"] == pytest.approx(1.0, abs=1e-6)
    assert hits["b"]["score"] == pytest.approx(-1 / math.sqrt(2), abs=1e-6)
    assert hits["c"]["score"] == pytest.approx(0.0, abs=1e-6)


def test_contributions_are_weight_times_cosine_and_sum_to_the_score(indexed):
    terms = [{"id": "a", "weight": 1.5}, {"id": "b", "weight": -0.5}, {"id": "c", "weight": 2}]
    hits = search(indexed, terms)
    norm = math.sqrt(1.5**2 + 0.5**2 + 2**2)  # ‖Σ wᵢ v̂ᵢ‖ for orthonormal v̂ᵢ
    for item, cosines in {
        "a": (1, 0, 0),
        "b+c": (0, 1 / math.sqrt(2), 1 / math.sqrt(2)),
        "a-b": (1 / math.sqrt(2), -1 / math.sqrt(2), 0),
    }.items():
        expected = [w * c for w, c in zip((1.5, -0.5, 2), cosines, strict=True)]
        assert hits[item]["contributions"] == pytest.approx(expected, abs=1e-6)
        assert sum(hits[item]["contributions"]) == pytest.approx(hits[item]["score"] * norm, abs=1e-5)


def test_scores_order_the_hits_and_k_cuts(indexed):
    # q = normalize(e0 + e1): a+b scores 1, a+2b 3/√10, then a and b 1/√2 each.
    body = {"terms": [{"id": "a"}, {"id": "b"}], "k": 2, "include_query_items": True}
    hits = indexed.post("/search", json=body).json()["hits"]
    assert [h["id"] for h in hits] == ["a+b", "a+2b"]
    assert hits[1]["score"] == pytest.approx(3 / math.sqrt(10), abs=1e-6)


def test_query_items_are_left_out_unless_asked(indexed):
    response = indexed.post("/search", json={"terms": [{"id": "a"}, {"id": "b"}], "k": 10})
    assert {"a", "b"}.isdisjoint(h["id"] for h in response.json()["hits"])


def test_terms_that_cancel_out_are_refused(indexed):
    response = indexed.post("/search", json={"terms": [{"id": "a"}, {"id": "a", "weight": -1}]})
    assert response.status_code == 422 and "cancel out" in response.json()["detail"]


def test_a_vector_term_is_an_embedding_given_as_numbers(indexed, basis):
    # The client's own embedding of e0 + e1 (any norm), weighed against the stored c.
    hits = search(indexed, [{"vector": basis(2, 2).tolist()}, {"id": "c", "weight": 0.5}])
    norm = math.sqrt(1 + 0.5**2)
    assert hits["a+b"]["contributions"] == pytest.approx([1.0, 0.0], abs=1e-6)
    assert hits["b+c"]["contributions"] == pytest.approx([0.5, 0.5 / math.sqrt(2)], abs=1e-6)
    assert sum(hits["b+c"]["contributions"]) == pytest.approx(hits["b+c"]["score"] * norm, abs=1e-5)
    assert max(hits, key=lambda i: hits[i]["score"]) == "a+b"


@pytest.mark.parametrize(
    ("vector", "words"),
    [
        ([1.0, 0.0, 0.0], "terms[0].vector: embedding of size 3; the index holds"),
        ("zeros", "terms[0].vector: embedding is zero or not finite"),
        ([], "at least 1 item"),
        (["1"], "valid number"),
    ],
)
def test_a_vector_term_that_does_not_fit_the_index_is_a_422(indexed, encoder, vector, words):
    vector = [0.0] * encoder.embed_dim if vector == "zeros" else vector
    response = indexed.post("/search", json={"terms": [{"vector": vector}]})
    assert response.status_code == 422 and words in response.json()["detail"], response.text


def test_a_term_with_a_vector_and_a_text_is_a_422(indexed, basis):
    response = indexed.post("/search", json={"terms": [{"vector": basis(1).tolist(), "text": "red"}]})
    assert response.status_code == 422 and "exactly one of" in response.json()["detail"]


def test_min_score_leaves_out_the_hits_below_it(indexed):
    # q = normalize(e0 + e1): a+b 1, a+2b 3/√10 ≈ 0.95, a and b 1/√2 ≈ 0.71, b+c 0.5, a-b and c 0.
    hits = search(indexed, [{"id": "a"}, {"id": "b"}], min_score=0.7)
    assert set(hits) == {"a+b", "a+2b", "a", "b"}
    assert set(search(indexed, [{"id": "a"}, {"id": "b"}], min_score=0.99)) == {"a+b"}
    assert len(search(indexed, [{"id": "a"}, {"id": "b"}], min_score=-1)) == 7


@pytest.mark.parametrize("min_score", [1.5, -1.01, "0.5"])
def test_min_score_outside_the_range_of_a_cosine_is_a_422(indexed, min_score):
    response = indexed.post("/search", json={"terms": [{"id": "a"}], "min_score": min_score})
    assert response.status_code == 422 and "min_score" in response.json()["detail"], response.text
