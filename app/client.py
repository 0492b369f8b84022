"""A typed, synchronous Python client for the pcclip API (httpx).

    from app.client import PcclipClient
    with PcclipClient("http://localhost:8000", api_key=None) as api:
        result = api.classify([Image.open("cat.png")], labels=["cat", "dog"])
        print(result.results[0].labels[0].label)

Images may be PIL images, raw file bytes, file paths, or `ImageInput`s (e.g. a URL).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from PIL import Image
from pydantic import BaseModel

from app.schemas import (
    ClassifyResponse,
    Comparative,
    DifferenceResponse,
    EmbedResponse,
    HealthResponse,
    ImageInput,
    InfoResponse,
    RankResponse,
    ReadyResponse,
)
from app.schemas.generate import EditTerm, GenerateAccepted, JobStatusResponse
from app.schemas.index import (
    AddItemsResponse,
    DeleteResponse,
    IndexInfo,
    IndexItem,
    SearchResponse,
    SearchTerm,
)

ImageLike = Image.Image | bytes | str | Path | ImageInput
Response = TypeVar("Response", bound=BaseModel)


class PcclipError(Exception):
    """The server answered with an error status; `detail` is its message, `errors` the
    offending fields of a validation failure (`[{"loc", "msg", "type"}]`, else empty)."""

    def __init__(
        self, status_code: int, detail: str, retry_after: str | None = None, errors: list[dict] | None = None
    ) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after
        self.errors = errors or []


def image_input(image: ImageLike) -> ImageInput:
    """Any supported image form → the JSON `ImageInput` (PIL images are sent as PNG)."""
    if isinstance(image, ImageInput):
        return image
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
    elif isinstance(image, bytes):
        data = image
    else:
        data = Path(image).read_bytes()
    return ImageInput(b64=base64.b64encode(data).decode("ascii"))


class PcclipClient:
    """One method per endpoint; responses are the server's pydantic response models."""

    def __init__(
        self,
        base_url: str = "http://localhost:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owned = http is None
        self._http = http if http is not None else httpx.Client(base_url=base_url, timeout=timeout)
        self._headers = headers

    def __enter__(self) -> PcclipClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    # --- system ----------------------------------------------------------------------------

    def health(self) -> HealthResponse:
        return self._get("/health", HealthResponse)

    def ready(self, require: Sequence[str] = ()) -> ReadyResponse:
        """Readiness of the model (and of the components in `require`: "index", "generator"),
        also while not ready (503 is answered with the same body)."""
        response = self._http.get("/ready", params={"require": list(require)}, headers=self._headers)
        if response.status_code not in (200, 503):
            self._raise(response)
        return ReadyResponse.model_validate(response.json())

    def info(self) -> InfoResponse:
        return self._get("/info", InfoResponse)

    def metrics(self) -> str:
        response = self._http.get("/metrics", headers=self._headers)
        self._check(response)
        return response.text

    # --- model endpoints -------------------------------------------------------------------

    def embed(self, texts: Sequence[str] = (), images: Sequence[ImageLike] = ()) -> EmbedResponse:
        body = {"texts": list(texts), "images": _images(images)}
        return self._post("/embed", body, EmbedResponse)

    def classify(
        self,
        images: Sequence[ImageLike],
        labels: Sequence[str],
        *,
        template: str | None = None,
        comparatives: Sequence[Comparative | dict] = (),
        alpha: float | None = None,
        top_k: int | None = None,
    ) -> ClassifyResponse:
        body: dict[str, Any] = {
            "images": _images(images),
            "labels": list(labels),
            "comparatives": [Comparative.model_validate(c).model_dump() for c in comparatives],
        }
        for name, value in (("template", template), ("alpha", alpha), ("top_k", top_k)):
            if value is not None:
                body[name] = value
        return self._post("/classify", body, ClassifyResponse)

    def classify_difference(
        self, pairs: Sequence[tuple[ImageLike, ImageLike]], texts: Sequence[str]
    ) -> DifferenceResponse:
        """Score each pair's difference against `texts`; a pair whose two images embed alike gets
        `scores`, `best` and `reversed` of None and its `reason`."""
        body = {
            "pairs": [{"first": _images([a])[0], "second": _images([b])[0]} for a, b in pairs],
            "texts": list(texts),
        }
        return self._post("/classify/difference", body, DifferenceResponse)

    def rank(self, images: Sequence[ImageLike], text: str, *, ids: Sequence[str] = ()) -> RankResponse:
        """Order images (and indexed items, by id) along a difference text."""
        return self._post("/rank", {"images": _images(images), "text": text, "ids": list(ids)}, RankResponse)

    # --- index and search ------------------------------------------------------------------

    def index_info(self) -> IndexInfo:
        return self._get("/index", IndexInfo)

    def index_add(self, items: Sequence[tuple[str, ImageLike] | tuple[str, ImageLike, dict]]) -> AddItemsResponse:
        """Add or replace items given as (id, image) or (id, image, metadata)."""
        body = {
            "items": [
                {"id": item[0], "image": _images([item[1]])[0], "metadata": item[2] if len(item) > 2 else {}}
                for item in items
            ]
        }
        return self._post("/index/items", body, AddItemsResponse)

    def index_item(self, item_id: str) -> IndexItem:
        return self._get(f"/index/items/{quote(item_id, safe='')}", IndexItem)

    def index_delete(self, item_id: str) -> DeleteResponse:
        response = self._http.delete(f"/index/items/{quote(item_id, safe='')}", headers=self._headers)
        self._check(response)
        return DeleteResponse.model_validate(response.json())

    def search(
        self,
        terms: Sequence[SearchTerm | dict],
        *,
        k: int = 10,
        filter: dict | None = None,
        include_query_items: bool = False,
    ) -> SearchResponse:
        """Search with weighted terms, e.g. `[{"id": "forest-17"}, {"difference": "snowier", "weight": 0.8}]`;
        an `image` may be any `ImageLike`."""
        body: dict[str, Any] = {"terms": [_term(t) for t in terms], "k": k, "include_query_items": include_query_items}
        if filter is not None:
            body["filter"] = filter
        return self._post("/search", body, SearchResponse)

    # --- generation ------------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        *,
        edits: Sequence[EditTerm | dict | tuple[str, float]] = (),
        negative_prompt: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        seed: int | None = None,
    ) -> GenerateAccepted:
        """Queue an SDXL job for `prompt + Σ wᵢ · editᵢ`; edits as ("snowier", 0.8) or dicts."""
        body: dict[str, Any] = {"prompt": prompt, "edits": [_edit(edit) for edit in edits]}
        options = {"negative_prompt": negative_prompt, "steps": steps, "guidance": guidance, "width": width}
        options |= {"height": height, "seed": seed}
        body |= {name: value for name, value in options.items() if value is not None}
        return self._post("/generate", body, GenerateAccepted)

    def generation(self, job_id: str) -> JobStatusResponse:
        """A job's status, progress and (when done) image and conditioning report."""
        return self._get(f"/generate/{quote(job_id, safe='')}", JobStatusResponse)

    def cancel_generation(self, job_id: str) -> JobStatusResponse:
        response = self._http.post(f"/generate/{quote(job_id, safe='')}/cancel", headers=self._headers)
        self._check(response)
        return JobStatusResponse.model_validate(response.json())

    def generation_events(self, job_id: str) -> Iterator[JobStatusResponse]:
        """The job's server-sent progress events (without the image), until it finishes."""
        with self._http.stream("GET", f"/generate/{quote(job_id, safe='')}/events", headers=self._headers) as stream:
            if stream.is_error:
                stream.read()
                self._raise(stream)
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    yield JobStatusResponse.model_validate_json(line.removeprefix("data: "))

    def wait_generation(self, job_id: str) -> JobStatusResponse:
        """Follow the job's events to its end, then fetch it with its image."""
        for _ in self.generation_events(job_id):
            pass
        return self.generation(job_id)

    # --- plumbing --------------------------------------------------------------------------

    def _get(self, path: str, model: type[Response]) -> Response:
        response = self._http.get(path, headers=self._headers)
        self._check(response)
        return model.model_validate(response.json())

    def _post(self, path: str, body: dict, model: type[Response]) -> Response:
        response = self._http.post(path, json=body, headers=self._headers)
        self._check(response)
        return model.model_validate(response.json())

    def _check(self, response: httpx.Response) -> None:
        if response.is_error:
            self._raise(response)

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        detail = body.get("detail")
        if not isinstance(detail, str):
            detail = response.text
        raise PcclipError(response.status_code, detail, response.headers.get("retry-after"), body.get("errors"))


def _edit(edit: EditTerm | dict | tuple[str, float]) -> dict:
    if isinstance(edit, tuple):
        return {"text": edit[0], "weight": edit[1]}
    return EditTerm.model_validate(edit).model_dump()


def generated_image(status: JobStatusResponse) -> Image.Image:
    """The PIL image of a finished job."""
    if status.image_png_b64 is None:
        raise ValueError(f"job {status.job_id} has no image (status {status.status})")
    return Image.open(io.BytesIO(base64.b64decode(status.image_png_b64)))


def _term(term: SearchTerm | dict) -> dict:
    if isinstance(term, SearchTerm):
        return term.model_dump(exclude_none=True)
    term = dict(term)
    if "image" in term:
        term["image"] = _images([term["image"]])[0]
    return term


def _images(images: Sequence[ImageLike]) -> list[dict]:
    return [image_input(image).model_dump(exclude_none=True) for image in images]
