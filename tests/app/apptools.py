"""Helpers for the app tests: drawn images and their encodings as request inputs."""

from __future__ import annotations

import atexit
import base64
import io
import shutil
import struct
import tempfile
import zlib

from PIL import Image, ImageDraw
from skimage import data

from app.settings import Settings


def make_settings(**overrides) -> Settings:
    """Settings of a test app: the session's tiny-base model on CPU, a fresh empty index folder,
    plus `overrides`."""
    defaults = {"model": "tiny-base", "device": "cpu"}
    if "index_dir" not in overrides:
        defaults["index_dir"] = tempfile.mkdtemp(prefix="pcclip-test-index-")
        atexit.register(shutil.rmtree, defaults["index_dir"], True)
    return Settings(_env_file=None, **{**defaults, **overrides})


COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
}


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def b64(image: Image.Image | bytes) -> dict:
    data = image if isinstance(image, bytes) else png(image)
    return {"b64": base64.b64encode(data).decode()}


def solid(colour: str, size: int = 32) -> Image.Image:
    return Image.new("RGB", (size, size), COLOURS[colour])


def shape(colour: str, kind: str = "circle", size: int = 64, scale: float = 0.6) -> Image.Image:
    """A filled shape in `colour` centred on white, `scale` of the image wide."""
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    half = size * scale / 2
    box = (size / 2 - half, size / 2 - half, size / 2 + half, size / 2 + half)
    if kind == "circle":
        draw.ellipse(box, fill=COLOURS[colour])
    elif kind == "square":
        draw.rectangle(box, fill=COLOURS[colour])
    else:
        draw.polygon([(size / 2, box[1]), (box[0], box[3]), (box[2], box[3])], fill=COLOURS[colour])
    return image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`×`height` but holds one zlib'd row: a decompression
    bomb's shape without the bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * (1 + 3 * min(width, 64))))
        + chunk(b"IEND", b"")
    )


def nested(depth: int) -> dict:
    """A JSON object nested `depth` levels deep (the object itself is level 1)."""
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"in": value}
    return value


ORIENTATION = 0x0112  # the EXIF tag


def photo_jpeg(orientation: int | None = None) -> bytes:
    """A 640×480 photo as JPEG, with an EXIF orientation when given."""
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((640, 480), Image.BICUBIC).save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()
