"""clip-retrieval's back protocol, driven by clip-retrieval's own `ClipClient` (its
`clip_client` module, loaded alone: the package's __init__ imports its Flask server) against a
live loopback server whose index starts empty and is filled through /index/items."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest
from apptools import b64, make_settings, png, shape
from test_multipart_limits import loopback_server

from app.main import create_app

ITEMS = {  # id: (colour, shape, caption)
    "red-circle": ("red", "circle", "a red circle"),
    "blue-square": ("blue", "square", "a blue square"),
    "green-triangle": ("green", "triangle", "a green triangle"),
    "yellow-circle": ("yellow", "circle", "a yellow circle"),
}


def load_clip_client():
    """clip-retrieval's `clip_client` module, without importing its package (`pip install --no-deps
    clip-retrieval`; the client needs only `requests`)."""
    package = importlib.util.find_spec("clip_retrieval")
    assert package is not None, "clip-retrieval is not installed (make install puts it in the venv)"
    path = Path(next(iter(package.submodule_search_locations))) / "clip_client.py"
    spec = importlib.util.spec_from_file_location("clip_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


clip_client = load_clip_client()


@pytest.fixture(scope="module")
def server(encoder):
    app = create_app(make_settings(max_search_k=3), encoder=encoder)
    with loopback_server(app) as (host, port):
        url = f"http://{host}:{port}"
        items = [
            {
                "id": item_id,
                "image": b64(shape(colour, kind)),
                "metadata": {"caption": caption, "url": f"https://example.com/{item_id}.png"},
            }
            for item_id, (colour, kind, caption) in ITEMS.items()
        ]
        assert httpx.get(f"{url}/index").json()["size"] == 0
        assert httpx.post(f"{url}/index/items", json={"items": items}, timeout=30).status_code == 200
        yield url


def clip(server, **options):
    return clip_client.ClipClient(url=f"{server}/knn-service", indice_name="pcclip", **options)


@pytest.mark.parametrize("item_id", list(ITEMS))
def test_clip_client_finds_the_item_by_text(server, item_id):
    results = clip(server, num_images=2).query(text=ITEMS[item_id][2])
    assert results[0]["id"] == item_id
    assert results[0]["caption"] == ITEMS[item_id][2] and results[0]["url"] == f"https://example.com/{item_id}.png"
    assert set(results[0]) == {"id", "similarity", "caption", "url"}  # clip back's shape
    assert len(results) == 2 and results[0]["similarity"] > results[1]["similarity"]


@pytest.mark.parametrize("item_id", ["red-circle", "blue-square"])
def test_clip_client_finds_the_item_by_image(server, tmp_path, item_id):
    colour, kind, _ = ITEMS[item_id]
    query = tmp_path / "query.png"
    query.write_bytes(png(shape(colour, kind, size=96, scale=0.45)))  # another size, the same thing
    results = clip(server, num_images=1).query(image=str(query))
    assert [result["id"] for result in results] == [item_id]


def test_clip_client_searches_by_embedding(server):
    vector = httpx.post(f"{server}/embed", json={"images": [b64(shape("green", "triangle"))]}).json()
    results = clip(server, num_images=1).query(embedding_input=vector["image_embeddings"][0])
    assert results[0]["id"] == "green-triangle" and results[0]["similarity"] == pytest.approx(1.0, abs=1e-5)


def test_num_images_is_clamped_to_the_servers_limit(server):
    assert len(clip(server, num_images=40).query(text="a red circle")) == 3  # PCCLIP_MAX_SEARCH_K


def test_only_the_first_num_images_results_carry_metadata(server):
    body = {"text": "a red circle", "modality": "image", "num_images": 1, "num_result_ids": 3}
    results = httpx.post(f"{server}/knn-service", json=body).json()
    assert [set(result) for result in results] == [{"id", "similarity", "caption", "url"}] + [{"id", "similarity"}] * 2


def test_metadata_and_indices_list(server):
    assert httpx.get(f"{server}/indices-list").json() == ["pcclip"]
    body = {"ids": ["blue-square", "gone", "red-circle"], "indice_name": "pcclip"}
    answer = httpx.post(f"{server}/metadata", json=body).json()
    assert [entry["id"] for entry in answer] == ["blue-square", "red-circle"]  # ids no longer indexed left out
    assert answer[0]["metadata"]["caption"] == "a blue square"


def test_metadata_takes_no_more_ids_than_any_list(server):
    limit = httpx.get(f"{server}/info").json()["limits"]["max_items"]
    response = httpx.post(f"{server}/metadata", json={"ids": [f"id-{i}" for i in range(limit + 1)]})
    assert response.status_code == 422 and f"at most {limit}" in response.text


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"text": "a red circle", "modality": "text"}, 422, "caption embeddings"),
        ({"text": "a red circle", "image": b64(shape("red"))["b64"]}, 422, "exactly one"),
        ({}, 422, "exactly one"),
        ({"text": "a red circle", "indice_name": "laion5B"}, 404, "laion5B"),
        ({"embedding_input": [1.0, 2.0]}, 422, "embedding_input: 2 numbers"),
        ({"image_url": "https://example.com/x.png"}, 422, "PCCLIP_ALLOW_URL_FETCH"),
        ({"image": "not base64!"}, 422, "image: invalid base64"),
        ({"text": "a red circle", "num_images": 0}, 422, "num_images"),
    ],
)
def test_bad_knn_requests_are_refused_with_the_reason(server, body, status, expected):
    response = httpx.post(f"{server}/knn-service", json=body)
    assert response.status_code == status and expected in response.text, response.text


def test_cors_is_off_by_default_and_on_for_configured_origins(make_client):
    preflight = {"Origin": "http://front.example", "Access-Control-Request-Method": "POST"}
    closed = make_client().options("/knn-service", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    open_ = make_client(cors_origins="http://front.example, http://other.example")
    allowed = open_.options("/knn-service", headers=preflight)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://front.example"
    answer = open_.get("/indices-list", headers={"Origin": "http://front.example"})
    assert answer.headers["access-control-allow-origin"] == "http://front.example"
    stranger = open_.options("/knn-service", headers={**preflight, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


def test_cors_origins_must_be_origins():
    with pytest.raises(ValueError, match="not an origin"):
        make_settings(cors_origins="front.example/path")
