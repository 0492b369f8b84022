"""The index and search endpoints with the real tiny-base model (and `tiny` for "redder")."""

from __future__ import annotations

import io
import json

import pytest
import torch
from apptools import b64, make_settings, nested, png, shape
from PIL import Image

from app.client import PcclipClient, PcclipError
from app.images import FORMATS, media_type
from app.index import NewItem
from app.index.wal import Record, WriteAheadLog
from app.main import create_app
from models import geometry


def add(client, *items):
    """items: (id, image[, metadata])"""
    body = {"items": [{"id": i[0], "image": b64(i[1]), "metadata": i[2] if len(i) > 2 else {}} for i in items]}
    response = client.post("/index/items", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_add_describe_get_delete(client, encoder):
    assert client.get("/index").json()["size"] == 0
    body = add(client, ("red-1", shape("red"), {"colour": "red"}), ("blue-1", shape("blue", "square")))
    assert body == {"added": ["red-1", "blue-1"], "replaced": [], "size": 2}
    assert add(client, ("red-1", shape("red", "triangle"), {"colour": "red", "v": 2}))["replaced"] == ["red-1"]

    info = client.get("/index").json()
    assert info["size"] == 2 and info["fingerprint"] == encoder.fingerprint
    assert info["index_type"] == "flat" and info["exact"] is True and info["embed_dim"] == encoder.embed_dim
    assert info["backend"] == "faiss"  # which backend serves
    assert client.get("/index/items/red-1").json() == {
        "id": "red-1",
        "metadata": {"colour": "red", "v": 2},
        "has_source": True,
        "metadata_problem": None,
    }
    anonymous = client.post("/index/items", json={"items": [{"image": b64(shape("green"))}]}).json()["added"][0]
    assert len(anonymous) == 32 and client.delete(f"/index/items/{anonymous}").status_code == 200
    assert client.delete("/index/items/red-1").json() == {"deleted": "red-1", "size": 1}
    for method in (client.delete, client.get):
        response = method("/index/items/red-1")
        assert response.status_code == 404 and "red-1" in response.json()["detail"]


def test_search_scores_are_cosines_with_the_combined_query(client, encoder):
    images = {
        "red-circle": shape("red"),
        "blue-square": shape("blue", "square"),
        "green-tri": shape("green", "triangle"),
    }
    add(client, *[(name, image, {"name": name}) for name, image in images.items()])
    query_image = shape("red", "square")
    terms = [{"image": b64(query_image)}, {"text": "a blue shape", "weight": 0.5}]
    response = client.post("/search", json={"terms": terms, "k": 3})
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]

    stored = encoder.encode_images(list(images.values()))  # (3, D)
    vectors = torch.cat([encoder.encode_images([query_image]), encoder.encode_texts(["a blue shape"])])
    weights = torch.tensor([1.0, 0.5])
    query = geometry.weighted_sum(vectors, weights)
    expected = dict(zip(images, (stored @ query).tolist(), strict=True))
    assert [h["id"] for h in hits] == sorted(expected, key=expected.__getitem__, reverse=True)
    for hit in hits:
        assert hit["score"] == pytest.approx(expected[hit["id"]], abs=1e-4)
        assert hit["metadata"] == {"name": hit["id"]}
        x = stored[list(images).index(hit["id"])]
        assert hit["contributions"] == pytest.approx(
            (weights * geometry.similarity(x[None], vectors)[0]).tolist(), abs=1e-4
        )


def test_filters_and_query_items(client):
    add(
        client,
        ("a", shape("red"), {"kind": "circle"}),
        ("b", shape("red", "square"), {"kind": "square"}),
        ("c", shape("blue"), {"kind": "circle"}),
    )
    hits = client.post("/search", json={"terms": [{"id": "a"}], "k": 5}).json()["hits"]
    assert [h["id"] for h in hits if h["id"] == "a"] == []  # the query item is left out by default
    hits = client.post("/search", json={"terms": [{"id": "a"}], "k": 5, "include_query_items": True}).json()["hits"]
    assert hits[0]["id"] == "a" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    hits = client.post("/search", json={"terms": [{"text": "red"}], "k": 5, "filter": {"kind": "circle"}}).json()
    assert sorted(h["id"] for h in hits["hits"]) == ["a", "c"]
    missing = client.post("/search", json={"terms": [{"id": "nope"}]})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"terms": []}, "terms"),
        ({"terms": [{"text": "a", "id": "b"}]}, "exactly one"),
        ({"terms": [{"weight": 2}]}, "exactly one"),
        ({"terms": [{"text": "a", "weight": 0}]}, "weight"),
        ({"terms": [{"text": ""}]}, "empty text"),
        ({"terms": [{"text": "a"}], "k": 0}, "k"),
        ({"terms": [{"text": "a"}], "k": 5000}, "at most 1000"),
        ({"terms": [{"text": f"t{i}"} for i in range(17)]}, "at most 16"),
        ({"terms": [{"text": "red"}, {"text": "red", "weight": -1}]}, "cancel out"),
        ({"terms": [{"id": "../../etc/passwd"}]}, "invalid id"),
    ],
)
def test_bad_searches_are_422(client, body, expected):
    response = client.post("/search", json=body)
    assert response.status_code == 422, response.text
    assert expected in str(response.json()["detail"])


@pytest.mark.parametrize("bad_id", ["../x", "a/b", ".git", "a b", "x" * 257])
def test_ids_that_could_name_paths_are_422(client, bad_id):
    response = client.post("/index/items", json={"items": [{"id": bad_id, "image": b64(shape("red"))}]})
    assert response.status_code == 422
    assert "invalid id" in response.text or "at most 256" in response.text
    assert client.get("/index").json()["size"] == 0


def test_bad_items_are_422_and_nothing_is_written(client):
    red = b64(shape("red"))
    for items, expected in [
        ([{"id": "a", "image": red}, {"id": "a", "image": red}], "twice"),
        ([{"id": "a", "image": red}, {"id": "b", "image": {"b64": "AAAA"}}], "items[1].image"),
        ([{"id": "a", "image": red, "metadata": {"x": "y" * 20000}}], "metadata"),
    ]:
        response = client.post("/index/items", json={"items": items})
        assert response.status_code == 422 and expected in response.text, response.text
    assert client.get("/index").json()["size"] == 0


def test_an_items_source_image_is_served_as_it_was_sent(client, encoder, tmp_path):
    buffer = io.BytesIO()
    shape("red").save(buffer, "JPEG")
    add(client, ("red-1", buffer.getvalue()))
    response = client.get("/index/items/red-1/image")
    assert response.status_code == 200 and response.content == buffer.getvalue()
    assert response.headers["content-type"] == "image/jpeg"
    missing = client.get("/index/items/nope/image")
    assert missing.status_code == 404 and "nope" in missing.text

    # A CLI build stores the path of its source file; once that file is gone, a clear 404.
    path = tmp_path / "blue.png"
    path.write_bytes(png(shape("blue")))
    vector = encoder.encode_images([shape("blue")])[0].numpy()
    client.app.state.index_slot.require().put([NewItem("from-cli", vector, {}, path)])
    assert client.get("/index/items/from-cli/image").content == path.read_bytes()
    path.unlink()
    gone = client.get("/index/items/from-cli/image")
    assert gone.status_code == 404 and "can no longer be read" in gone.text


@pytest.mark.parametrize("kind", FORMATS)
def test_media_types_are_read_from_the_file_signature(kind):
    buffer = io.BytesIO()
    shape("red").save(buffer, kind)
    assert media_type(buffer.getvalue()) == Image.MIME[kind]
    assert media_type(b"not an image") == "application/octet-stream"


@pytest.mark.parametrize(
    ("metadata", "expected", "as_filter"),
    [
        (json.dumps(nested(300)), "nested more than 32 levels deep", "filter.in: $eq compares with"),
        (json.dumps(nested(33)), "nested more than 32 levels deep", "not an object"),
        ('{"x": NaN}', "NaN", "filter.x: $eq: numbers must be finite, not NaN"),
        (
            '{"x": [1, Infinity]}',
            "Infinity",
            "filter.x: $eq compares with a string, number, boolean or null, not an array",
        ),
        ('{"x": {"y": -Infinity}}', "-Infinity", "not an object"),
        ('{"x": 1e999}', "Infinity", "numbers must be finite, not Infinity"),
    ],
)
def test_metadata_is_checked_completely_at_the_door(client, metadata, expected, as_filter):
    """Metadata breaking the rules is refused whole; as a filter the same JSON breaks the filter language."""
    image = json.dumps(b64(shape("red")))
    body = f'{{"items": [{{"id": "a", "image": {image}, "metadata": {metadata}}}]}}'
    response = client.post("/index/items", content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "items[0].metadata" in response.text and expected in response.text
    assert client.get("/index").json()["size"] == 0
    search = f'{{"terms": [{{"text": "red"}}], "filter": {metadata}}}'
    response = client.post("/search", content=search.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422 and as_filter in response.json()["detail"], response.text


def test_metadata_at_the_limits_is_kept_and_served(client):
    add(client, ("deep", shape("red"), nested(32)))
    assert client.get("/index/items/deep").json()["metadata"] == nested(32)
    (hit,) = client.post("/search", json={"terms": [{"text": "red"}]}).json()["hits"]
    assert hit["metadata"] == nested(32) and hit["metadata_problem"] is None


def test_metadata_an_index_already_holds_against_the_rules_is_served_with_its_problem(make_client, encoder, tmp_path):
    """An item an older server accepted (nested 300 deep: pydantic cannot serialize it), in the
    log in the real record format: reads and searches that meet it answer 200, never 500."""
    client = make_client(index_dir=tmp_path)
    add(client, ("fine", shape("red"), {"colour": "red"}))
    client.__exit__(None, None, None)
    wal = WriteAheadLog(next(tmp_path.glob("wal-*.log")))
    wal.append([Record(2, "put", "deep", nested(300), None, encoder.encode_images([shape("blue")])[0].numpy())])
    wal.close()

    again = make_client(index_dir=tmp_path)
    item = again.get("/index/items/deep")
    assert item.status_code == 200, item.text
    assert item.json()["metadata"] == {} and "nested more than 32 levels deep" in item.json()["metadata_problem"]
    found = again.post("/search", json={"terms": [{"text": "blue"}], "k": 2})
    assert found.status_code == 200, found.text
    assert {h["id"]: h["metadata_problem"] is None for h in found.json()["hits"]} == {"fine": True, "deep": False}
    assert again.get("/index").json()["metadata_problems"] == 1
    assert PcclipClient(http=again).index_item("deep").metadata_problem == item.json()["metadata_problem"]


def test_the_index_survives_a_restart_and_another_model_is_refused(make_client, encoder, tmp_path):
    client = make_client(index_dir=tmp_path)
    add(client, ("kept", shape("red")))
    client.__exit__(None, None, None)  # lifespan end: snapshot and release

    again = make_client(index_dir=tmp_path)
    assert again.get("/index/items/kept").status_code == 200
    again.__exit__(None, None, None)

    class OtherModel:
        """The session encoder under another fingerprint."""

        def __getattr__(self, name):
            return getattr(encoder, name)

        fingerprint = "0" * 64

    other = make_client(create_app(make_settings(index_dir=tmp_path), encoder=OtherModel()))
    ready = other.get("/ready")
    assert ready.status_code == 200  # the model API serves; the index is reported beside it
    assert ready.json()["model"]["state"] == "ready" and ready.json()["index"]["state"] == "failed"
    detail = ready.json()["index"]["detail"]
    assert "built by model" in detail and f"pcclip index rebuild --index-dir {tmp_path}" in detail
    assert other.get("/ready", params={"require": "index"}).status_code == 503
    refused = other.post("/search", json={"terms": [{"text": "red"}]})
    assert refused.status_code == 503 and "built by model" in refused.json()["detail"]
    assert other.post("/embed", json={"texts": ["still serves"]}).status_code == 200
    assert other.get("/info").json()["capabilities"]["index"] is False


def test_rank_orders_indexed_items_with_images(client, encoder):
    add(client, ("big", shape("blue", scale=0.9)), ("small", shape("blue", scale=0.2)))
    text = "the first shape is larger than the second shape"
    middle = shape("blue", scale=0.5)
    response = client.post("/rank", json={"images": [b64(middle)], "ids": ["small", "big"], "text": text})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    vectors = encoder.encode_images([middle, shape("blue", scale=0.2), shape("blue", scale=0.9)])
    scores = geometry.project(vectors, encoder.encode_texts([text])[0]).tolist()
    refs = [(0, None), (None, "small"), (None, "big")]
    expected = [refs[i] for i in sorted(range(3), key=lambda i: -scores[i])]
    assert [(r["index"], r["id"]) for r in results] == expected
    assert client.post("/rank", json={"ids": ["nope"], "text": text}).status_code == 404


def test_the_client_has_index_methods(client):
    api = PcclipClient(http=client)
    assert api.index_add([("x1", shape("red"), {"k": 1}), ("x2", shape("blue"))]).added == ["x1", "x2"]
    assert api.index_info().size == 2 and api.index_item("x1").metadata == {"k": 1}
    found = api.search([{"image": shape("red")}, {"difference": "redder", "weight": 0.3}], k=1)
    assert found.hits[0].id == "x1" and len(found.hits[0].contributions) == 2
    assert [r.id for r in api.rank([], "the first is more red than the second", ids=["x1", "x2"]).results][0] == "x1"
    assert api.index_delete("x1").size == 1
    with pytest.raises(PcclipError) as error:
        api.index_item("x1")
    assert error.value.status_code == 404


def tint(image: Image.Image, rgb: tuple[int, int, int], amount: float = 0.35) -> Image.Image:
    return Image.blend(image, Image.new("RGB", image.size, rgb), amount)


@pytest.fixture(scope="module")
def tiny():
    from models import create_model

    return create_model("tiny", device="cpu")


@pytest.mark.parametrize(("colour", "winner"), [("redder", "red"), ("bluer", "blue")])
def test_an_image_plus_a_difference_finds_its_variant_along_it(make_client, tiny, colour, winner):
    """`tiny`: image + "the first image is redder than the second" ranks the red-tinted variant
    above the blue-tinted one (and "bluer" the other way round, so it is the difference term that
    decides). The bare word "redder" points the right way too, but at weight 0.8 it does not
    outweigh how much closer the blue tint is to the green base."""
    difference = f"the first image is {colour} than the second"
    client = make_client(create_app(make_settings(model="tiny"), encoder=tiny))
    base = shape("green")
    add(
        client,
        ("base", base),
        ("red", tint(base, (255, 0, 0))),
        ("blue", tint(base, (0, 0, 255))),
        ("other", shape("yellow", "square")),
    )
    terms = [{"id": "base"}, {"difference": difference, "weight": 0.8}]
    hits = client.post("/search", json={"terms": terms, "k": 3}).json()["hits"]
    scores = {h["id"]: h["score"] for h in hits}
    loser = "blue" if winner == "red" else "red"
    assert scores[winner] > scores[loser], scores
