"""Image inputs: base64, uploaded bytes and (where enabled) public URLs → the model's input tensor.

Every failure is an `InvalidInput` naming the offending field (``images[2]: …``); nothing a
client sends can raise anything else. Sizes are checked from the header, before the pixels are
decoded, so a small file that claims to be a huge image (a decompression bomb) costs nothing.
The pixels then held are bounded across requests (`PixelBudget`): a request reserves them
before decoding, and its images are decoded one at a time, each freed once it is a tensor.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool

from app.batcher import PixelBudget
from app.errors import InvalidInput
from app.schemas.common import ImageInput
from app.settings import Settings
from app.url_fetch import UrlFetcher
from models.images import decode_upright

FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")

# One input as it arrives: an `ImageInput` from JSON, or the raw bytes of an uploaded file.
Source = ImageInput | bytes
# The model's own preprocessing: RGB images → (N, 3, H, W) (`models.Encoder.pixels`).
Preprocess = Callable[[Sequence[Image.Image]], torch.Tensor]


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int  # per image, width × height
    max_side: int  # per image, longest side
    max_total_pixels: int  # over all images of one request

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        return cls(settings.max_image_pixels, settings.max_image_side, settings.max_request_pixels)


# --- bytes → image -------------------------------------------------------------------------

# File signatures of FORMATS: (offset, magic bytes, media type).
SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF8", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
)
MEDIA_TYPES = tuple(dict.fromkeys(name for _, _, name in SIGNATURES))


def media_type(data: bytes) -> str:
    """The media type of an image file of one of FORMATS, from its signature (nothing decoded)."""
    for offset, magic, name in SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    return "application/octet-stream"


def decode_b64(text: str, where: str) -> bytes:
    """Strict base64 (whitespace and a ``data:…;base64,`` prefix tolerated)."""
    if text.startswith("data:"):
        _, sep, text = text.partition(",")
        if not sep:
            raise InvalidInput(f"{where}: data URL without a ',' before the base64 payload")
    text = "".join(text.split())
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{where}: invalid base64 ({exc})") from None
    if not data:
        raise InvalidInput(f"{where}: empty image data")
    return data


def open_image(data: bytes, where: str, limits: ImageLimits) -> Image.Image:
    """Read only the header of `data` and check the size limits; pixels stay undecoded."""
    if not data:
        raise InvalidInput(f"{where}: empty image data")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise InvalidInput(f"{where}: image too large ({exc})") from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{where}: not an image in a supported format ({', '.join(FORMATS)})") from None
    except Exception as exc:  # noqa: BLE001 — untrusted bytes: any decoder error is the input's
        raise InvalidInput(f"{where}: unreadable image header ({exc})") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidInput(f"{where}: empty image ({width}×{height} pixels)")
    if max(width, height) > limits.max_side:
        raise InvalidInput(f"{where}: image is {width}×{height} pixels; the longest side allowed is {limits.max_side}")
    if width * height > limits.max_pixels:
        raise InvalidInput(
            f"{where}: image is {width}×{height} = {width * height} pixels; at most {limits.max_pixels} allowed"
        )
    return image


def load_pixels(image: Image.Image, where: str, side: int | None = None) -> Image.Image:
    """Decode the pixels upright and in RGB; a large JPEG reduced towards `side` (`decode_upright`)."""
    try:
        return decode_upright(image, side)
    except Exception as exc:  # noqa: BLE001 — truncated/corrupt data surfaces as many types
        raise InvalidInput(f"{where}: corrupt image data ({exc})") from None


def open_images(blobs: Sequence[tuple[str, bytes]], limits: ImageLimits) -> list[tuple[str, Image.Image]]:
    """Named image files → named images, headers checked (per image and in total), pixels not
    yet decoded."""
    opened = []
    total = 0
    for where, data in blobs:
        image = open_image(data, where, limits)
        total += image.size[0] * image.size[1]
        if total > limits.max_total_pixels:
            raise InvalidInput(
                f"{where}: the request's images hold more than {limits.max_total_pixels} pixels in total"
            )
        opened.append((where, image))
    return opened


def to_model_input(
    blobs: Sequence[tuple[str, bytes]],
    limits: ImageLimits,
    preprocess: Preprocess,
    budget: PixelBudget,
    side: int | None = None,
) -> torch.Tensor:
    """Named image files → the model's input (N, 3, H, W); blocking, CPU-bound.

    All headers are checked before any pixels are decoded; then the request's pixels are held
    in `budget` (or refused) and its images decoded one at a time, each image's share given back
    once it is a tensor. `side` is the model's input side (see `load_pixels`)."""
    return decode_opened(open_images(blobs, limits), preprocess, budget, side)


def decode_opened(
    opened: Sequence[tuple[str, Image.Image]], preprocess: Preprocess, budget: PixelBudget, side: int | None = None
) -> torch.Tensor:
    """Images whose headers were checked (`open_images`) → the model's input (N, 3, H, W), their
    pixels held in `budget` as `to_model_input` says."""
    counted = [(where, image, image.size[0] * image.size[1]) for where, image in opened]
    with budget.hold(sum(pixels for _, _, pixels in counted)) as release:
        rows = []
        for where, image, pixels in counted:  # pixels as the header said: a reduced decode shrinks image.size
            rows.append(preprocess_one(image, where, preprocess, side))
            release(pixels)
    return rows[0] if len(rows) == 1 else torch.cat(rows)


def preprocess_one(image: Image.Image, where: str, preprocess: Preprocess, side: int | None = None) -> torch.Tensor:
    """Decode one image and preprocess it.  -> (1, 3, H, W); its full-size pixels are freed on return."""
    try:
        rgb = load_pixels(image, where, side)
        try:
            return preprocess([rgb])
        except Exception as exc:  # noqa: BLE001 — a decoded image the transform still rejects
            raise InvalidInput(f"{where}: preprocessing failed ({exc})") from None
    finally:
        image.close()


# --- the loader services use ---------------------------------------------------------------


INLINE_MAX_BYTES = 256 * 1024  # image file bytes of a request small enough to read on the event loop


class ImageLoader:
    """Turns request inputs into the model's input; a small request on the event loop, any other
    in the threadpool.

    A trip to the threadpool and back costs more than decoding a few small images: with the
    `tiny` model and one 224×224 JPEG per request at concurrency 16 (wrk), serving them on the
    loop took the server's CPU per request from 3.5 to 3.0 ms and its throughput from 325 to 407
    requests/s (two interleaved runs each).
    A request qualifies when its files total at most `INLINE_MAX_BYTES` and their headers at most
    `inline_pixels` pixels (0: never), so the loop never decodes more than that at once.
    """

    def __init__(self, limits: ImageLimits, fetcher: UrlFetcher, inline_pixels: int = 0) -> None:
        self.limits = limits
        self.fetcher = fetcher
        self.inline_pixels = inline_pixels

    @classmethod
    def from_settings(cls, settings: Settings, **fetcher_options) -> ImageLoader:
        fetcher = UrlFetcher(
            enabled=settings.allow_url_fetch,
            timeout_s=settings.url_timeout_s,
            max_bytes=settings.url_max_bytes,
            **fetcher_options,
        )
        return cls(ImageLimits.from_settings(settings), fetcher, settings.inline_decode_pixels)

    async def read_bytes(self, sources: Sequence[tuple[str, Source]]) -> list[bytes]:
        """The file bytes of named inputs: URLs fetched (where allowed, concurrently), base64
        decoded off the event loop, uploads as they are. Nothing is decoded as an image."""
        fetched = await self._fetch_urls(sources)
        return await run_in_threadpool(_file_bytes, sources, fetched)

    async def load(
        self,
        sources: Sequence[tuple[str, Source]],
        preprocess: Preprocess,
        budget: PixelBudget,
        side: int | None = None,
    ) -> torch.Tensor:
        """`sources` are (field name for messages, input) pairs, e.g. ("images[0]", ...); `side`
        the model's input side (`to_model_input`).  -> (N, 3, H, W)

        A small request is decoded on the event loop (see the class); any other's base64
        decoding, image decoding and preprocessing share one trip to the threadpool."""
        fetched = await self._fetch_urls(sources)
        if self.inline_pixels and _file_size(sources, fetched) <= INLINE_MAX_BYTES:
            opened = open_images(_named_blobs(sources, fetched), self.limits)
            if sum(image.size[0] * image.size[1] for _, image in opened) <= self.inline_pixels:
                return decode_opened(opened, preprocess, budget, side)
            return await run_in_threadpool(decode_opened, opened, preprocess, budget, side)

        def blocking() -> torch.Tensor:
            return to_model_input(_named_blobs(sources, fetched), self.limits, preprocess, budget, side)

        return await run_in_threadpool(blocking)

    async def _fetch_urls(self, sources: Sequence[tuple[str, Source]]) -> dict[int, bytes]:
        """The bytes of the URL inputs (where allowed, concurrently), by position in `sources`."""
        urls = [(i, where, url) for i, (where, s) in enumerate(sources) if (url := _url_of(s)) is not None]
        if not urls:
            return {}
        fetched = await asyncio.gather(*(self.fetcher.fetch(url, where) for _, where, url in urls))
        return {i: blob for (i, _, _), blob in zip(urls, fetched, strict=True)}


def _url_of(source: Source) -> str | None:
    """The URL of a URL input; None for base64 and uploaded bytes."""
    return source.url if isinstance(source, ImageInput) else None


def _named_blobs(sources: Sequence[tuple[str, Source]], fetched: dict[int, bytes]) -> list[tuple[str, bytes]]:
    data = _file_bytes(sources, fetched)
    return [(where, blob) for (where, _), blob in zip(sources, data, strict=True)]


def _file_size(sources: Sequence[tuple[str, Source]], fetched: dict[int, bytes]) -> int:
    """An upper bound of the inputs' file bytes, without decoding base64 (3 bytes per 4 characters)."""
    total = sum(len(blob) for blob in fetched.values())
    for i, (_, source) in enumerate(sources):
        if i not in fetched:
            total += len(source) if isinstance(source, bytes) else len(source.b64 or "") * 3 // 4
    return total


def _file_bytes(sources: Sequence[tuple[str, Source]], fetched: dict[int, bytes]) -> list[bytes]:
    """Uploads as they are, base64 decoded, URL inputs as `fetched` (by position)."""
    return [fetched[i] if i in fetched else _one_file(where, source) for i, (where, source) in enumerate(sources)]


def _one_file(where: str, source: Source) -> bytes:
    if isinstance(source, bytes):
        return source
    return decode_b64(source.b64 or "", where)
