"""`/index/items`, `/index` and `/search` through the API, on an app with each backend
(`PCCLIP_INDEX_BACKEND=faiss`, and `milvus` on a Milvus Lite file in tmp): operator filters,
`min_score`, `vector` terms, contributions, and bad filters as 422s."""

from __future__ import annotations

import pytest
from apptools import b64, shape
from index_checks import BACKENDS, backend_settings, milvus_lite  # noqa: F401 — a fixture

ITEMS = {
    "red-circle": ("red", "circle", {"colour": "red", "year": 2020, "tags": "warm"}),
    "red-square": ("red", "square", {"colour": "red", "year": 2023}),
    "blue-square": ("blue", "square", {"colour": "blue", "year": 2021.0}),
    "green-tri": ("green", "triangle", {"colour": "green", "year": "2019"}),
}


@pytest.fixture(params=BACKENDS)
def client(request, make_client):
    """A started app on this backend, holding `ITEMS`."""
    client = make_client(**backend_settings(request))
    body = {
        "items": [
            {"id": name, "image": b64(shape(colour, kind)), "metadata": metadata}
            for name, (colour, kind, metadata) in ITEMS.items()
        ]
    }
    response = client.post("/index/items", json=body)
    assert response.status_code == 200, response.text
    return client


def search(client, **body):
    response = client.post("/search", json={"terms": [{"text": "a red shape"}], "k": 10, **body})
    assert response.status_code == 200, response.text
    return response.json()["hits"]


def test_index_reports_its_backend(client, request):
    info = client.get("/index").json()
    backend = request.node.callspec.params["client"]
    assert info["backend"] == backend and info["size"] == len(ITEMS)
    if backend == "milvus":  # what only FAISS can report is null, never a 500
        assert info["deleted_rows"] is None and info["wal_records"] is None and info["collection"].startswith("c")
    else:
        assert info["deleted_rows"] == 0 and info["collection"] is None


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"colour": "red"}, {"red-circle", "red-square"}),
        ({"year": {"$gte": 2021}}, {"red-square", "blue-square"}),  # "2019" is a string: no number order
        ({"year": 2021}, {"blue-square"}),  # stored 2021.0
        ({"colour": {"$in": ["blue", "green"]}}, {"blue-square", "green-tri"}),
        ({"colour": {"$nin": ["red"]}, "year": {"$ne": "2019"}}, {"blue-square"}),
        ({"tags": {"$ne": "warm"}}, {"red-square", "blue-square", "green-tri"}),  # missing key: $ne holds
        ({"$or": [{"year": {"$lt": 2021}}, {"colour": "green"}]}, {"red-circle", "green-tri"}),
    ],
)
def test_operator_filters(client, filter, expected):
    assert {hit["id"] for hit in search(client, filter=filter)} == expected


def test_min_score_vector_terms_and_contributions(client):
    hits = search(client)
    assert {h["id"] for h in hits[:2]} == {"red-circle", "red-square"}
    for hit in hits:  # one term of weight 1: its contribution is the score
        assert hit["contributions"] == pytest.approx([hit["score"]], abs=1e-4)
    floor = (hits[1]["score"] + hits[2]["score"]) / 2
    assert [h["id"] for h in search(client, min_score=floor)] == [h["id"] for h in hits[:2]]

    vector = client.post("/embed", json={"texts": ["a red shape"]}).json()["text_embeddings"][0]
    by_vector = search(client, terms=[{"vector": [2 * x for x in vector]}])  # normalized like any term
    assert [h["id"] for h in by_vector] == [h["id"] for h in hits]
    assert [h["score"] for h in by_vector] == pytest.approx([h["score"] for h in hits], abs=1e-4)

    client.delete("/index/items/red-circle")
    assert "red-circle" not in {h["id"] for h in search(client, filter={"colour": "red"})}


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"year": {"$gt": True}}, "filter.year: $gt needs a number or a string"),
        ({"$or": [{"a": 1}, {"b": {"$regex": "x"}}]}, "filter.$or[1].b: unknown operator '$regex'"),
        ({"tag": {"$in": list(range(600))}}, "more than 512 conditions and list entries"),
    ],
)
def test_a_bad_filter_is_a_422_naming_its_place(client, filter, message):
    response = client.post("/search", json={"terms": [{"text": "red"}], "filter": filter})
    assert response.status_code == 422 and message in response.json()["detail"], response.text
