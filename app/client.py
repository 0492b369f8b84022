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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

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

ImageLike = Image.Image | bytes | str | Path | ImageInput
Response = TypeVar("Response", bound=BaseModel)


class PcclipError(Exception):
    """The server answered with an error status; `detail` is its message."""

    def __init__(self, status_code: int, detail: Any, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after


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

    def ready(self) -> ReadyResponse:
        """Readiness, also while not ready (503 is answered with the same body)."""
        response = self._http.get("/ready", headers=self._headers)
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
        body = {
            "pairs": [{"first": _images([a])[0], "second": _images([b])[0]} for a, b in pairs],
            "texts": list(texts),
        }
        return self._post("/classify/difference", body, DifferenceResponse)

    def rank(self, images: Sequence[ImageLike], text: str) -> RankResponse:
        return self._post("/rank", {"images": _images(images), "text": text}, RankResponse)

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
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise PcclipError(response.status_code, detail, response.headers.get("retry-after"))


def _images(images: Sequence[ImageLike]) -> list[dict]:
    return [image_input(image).model_dump(exclude_none=True) for image in images]
