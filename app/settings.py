"""Server settings: environment variables with the prefix ``PCCLIP_`` (pydantic-settings).

Every field carries a description; the README's configuration reference is generated from them.
`pcclip serve` flags override the environment (see `app.commands.serve`).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ORIGIN = re.compile(r"https?://[^/\s]+")  # scheme://host[:port], no path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PCCLIP_", extra="ignore", frozen=True)

    # --- model -----------------------------------------------------------------------------
    model: str = Field(
        "tiny",
        description="Model spec: `tiny`, `tiny-base`, `openclip:ARCH/PRETRAINED`, "
        "`openclip:ARCH/random`, or a checkpoint folder written by `pcclip finetune`.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the model runs: `auto` (CUDA when present), `cpu` or `cuda`."
    )

    torch_threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads torch may use for one forward pass; unset = torch's default (all cores). "
        "Set it to the container's CPU quota: oversubscribed threads make CPU inference many times slower.",
    )

    trace_towers: bool = Field(
        True,
        description="Run the image and text towers as TorchScript traces, each checked against the eager tower at "
        "load (a tower that does not trace or match stays eager): one GIL release per forward instead of one per "
        "op, so the forward keeps its speed while the event loop is busy.",
    )

    # --- network ---------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface to listen on (`0.0.0.0` in containers).")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    keep_alive_s: int = Field(
        75,
        ge=1,
        description="Seconds an idle keep-alive connection stays open. Keep it above the idle timeout of the "
        "clients and load balancers in front: a client that reuses a connection just as the server closes it "
        "loses that request (httpx keeps idle connections 5 s, many load balancers 60 s).",
    )
    head_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a whole request head (request line and headers), counted from "
        "a new connection or from the first byte of the next request on a kept-alive one; then the connection "
        "is closed (408 when part of a head came). Idle and byte-by-byte (slowloris) connections cannot pile up.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Most open client connections; beyond it a new connection gets 503 + Retry-After and is "
        "closed at once. Each takes a file descriptor: at startup the server raises its soft open-files limit "
        "to fit, up to the hard limit (`ulimit -Hn`), and warns when it cannot.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated addresses or networks (`10.0.0.0/8`) of the reverse proxies or load "
        "balancers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed, or `*` for any; empty = none: "
        "the client is the connecting address (a header sent by anyone else could pick any address and escape "
        "the per-client rate limit).",
    )

    # --- access ----------------------------------------------------------------------------
    api_key: SecretStr | None = Field(
        None,
        description="Bearer API key required on the model endpoints; unset = no authentication.",
    )
    rate_limit: float | None = Field(
        None,
        gt=0,
        description="Sustained requests per second allowed per API key (per client address when "
        "no key is configured); unset = no rate limit.",
    )
    rate_burst: int = Field(20, ge=1, description="Requests a key may make at once before `rate_limit` applies.")
    cors_origins: str = Field(
        "",
        description="Web origins whose pages may call the API from the browser (CORS), comma-separated, e.g. "
        "`https://ui.example.com,http://localhost:3005` (clip-retrieval's front end); `*` for any; "
        "empty = none (same-origin pages only).",
    )

    # --- batching --------------------------------------------------------------------------
    max_batch: int = Field(64, ge=1, description="Most items (images or texts) merged into one forward pass.")
    image_chunk: int | None = Field(
        None,
        ge=1,
        description="Most images one forward call computes; a larger batch runs in parts of this size, one after "
        "another. Unset: on the CPU, the most images (a power of two) whose largest activation stays within "
        "glibc's 32 MiB mmap threshold, so that malloc reuses it instead of mapping and faulting it in anew at every "
        "layer (ViT-B-32: 32, 30.6 against 34.0 ms per image in calls of 64; ViT-B-16: 8, 141–146 against "
        "171–175 ms in calls of 32; 2 cores); the whole batch on a GPU.",
    )
    max_wait_ms: float = Field(
        2.0,
        ge=0,
        description="Longest a queued item waits for others to join its batch, in milliseconds.",
    )
    batch_patience: float = Field(
        0.25,
        ge=0,
        le=4,
        description="While more requests are on their way (images still decoding, or fewer items than the last "
        "batch held) and none was already waiting when the model came free, a batch waits for them up to this "
        "share of the last forward pass (0 = never): a wave of concurrent requests then shares one forward.",
    )
    queue_limit: int = Field(
        1024,
        ge=1,
        description="Most items waiting for the model; beyond it requests get 429 + Retry-After.",
    )
    text_cache_size: int = Field(10_000, ge=0, description="Text embeddings kept in the LRU cache (labels, prompts).")

    # --- request limits --------------------------------------------------------------------
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest request body accepted, in bytes (413).")
    max_image_pixels: int = Field(
        16_777_216,
        ge=1,
        description="Most pixels (width × height) in one image, checked before decoding.",
    )
    max_image_side: int = Field(8192, ge=1, description="Longest image side in pixels, checked before decoding.")
    max_request_pixels: int = Field(67_108_864, ge=1, description="Most pixels over all images of one request.")
    max_pixels_in_flight: int = Field(
        67_108_864,
        ge=1,
        description="Most decoded image pixels held at once over all requests, counted from each image's header "
        "until it has become the model's input; beyond it requests get 429 + Retry-After. A request over it "
        "still runs when no other is decoding.",
    )
    inline_decode_pixels: int = Field(
        262_144,
        ge=0,
        description="Requests whose images hold at most this many pixels in total (by their headers; files of "
        "at most 256 KiB) are decoded on the event loop instead of the threadpool, whose round trip costs more "
        "than decoding them; 0 = always the threadpool.",
    )
    max_items: int = Field(
        256,
        ge=1,
        description="Most entries in any one list of a request (images, texts, labels, pairs, comparatives).",
    )
    max_text_chars: int = Field(1000, ge=1, description="Longest text accepted, in characters.")

    # --- image URLs ------------------------------------------------------------------------
    allow_url_fetch: bool = Field(
        False,
        description='Accept `{"url": ...}` image inputs. Only public http(s) addresses are '
        "fetched; private, loopback, link-local and reserved targets are always refused.",
    )
    url_timeout_s: float = Field(5.0, gt=0, description="Time limit for fetching one image URL.")
    url_max_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest image downloaded from a URL, in bytes.")

    # --- other resources -------------------------------------------------------------------
    index_backend: Literal["faiss", "milvus"] = Field(
        "faiss",
        description="Where the search index lives: `faiss` (embedded, in PCCLIP_INDEX_DIR; one process owns it) or "
        "`milvus` (a Milvus collection, PCCLIP_MILVUS_URI; several replicas may share it).",
    )
    index_dir: Path = Field(Path("data/index"), description="Folder holding the search index (the `faiss` backend).")
    index_sources_dir: Path | None = Field(
        None,
        description="Folder of the source images of indexed items (content-addressed files, served by "
        "`GET /index/items/{id}/image` and kept for re-embedding) for the `milvus` backend; share it between "
        "replicas. Unset = `sources` in PCCLIP_INDEX_DIR.",
    )
    milvus_uri: str = Field(
        "data/milvus.db",
        description="The `milvus` backend's Milvus: a file path ending in `.db` (Milvus Lite, in the process: for "
        "tests and one machine) or `http(s)://host:19530` (a Milvus server or cluster).",
    )
    milvus_token: SecretStr | None = Field(
        None, description="Credentials for PCCLIP_MILVUS_URI: `user:password` or an API key; unset = none."
    )
    milvus_collection: str = Field(
        "pcclip",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
        description="The Milvus collection holding the index (letters, digits and `_`); one per model.",
    )
    index_exact_max: int = Field(
        200_000,
        ge=0,
        description="Indexed items up to which search is exact (FAISS IndexFlatIP); beyond it the index "
        "becomes approximate (HNSW) at the next snapshot.",
    )
    index_ef_search: int | None = Field(
        None,
        ge=1,
        description="HNSW search beam width of an approximate index (higher: better recall, slower); "
        "unset = chosen by size, 128 · √(items / PCCLIP_INDEX_EXACT_MAX) within 128–512 (with the default "
        "exact_max: 128 at 200k items, 256 at 800k, 286 at 1M). See bench/search.py.",
    )
    index_kind: Literal["auto", "flat", "hnsw", "ivf-sq8", "ivf-pq"] = Field(
        "auto",
        description="FAISS index kind: auto = by size (exact up to PCCLIP_INDEX_EXACT_MAX, HNSW up to 2M items, "
        "then ivf-sq8: an inverted file over 8-bit scalar-quantized vectors, ~0.4 KB per 384-d item); or always "
        "flat, hnsw, ivf-sq8 or ivf-pq (4-bit PQ re-ranked with SQ8). Compressed kinds are trained on a sample of "
        "the items when the index is rebuilt at a snapshot, and stay exact below 10,000 items. See app/index/ann.py.",
    )
    index_nprobe: int = Field(
        16,
        ge=1,
        description="Inverted lists scanned per query by a compressed (ivf-*) index (higher: better recall, slower).",
    )
    index_rerank: int = Field(
        4,
        ge=1,
        description="Candidates per hit asked for that a compressed (ivf-*) index fetches by its codes and "
        "re-scores exactly from the float vectors (memory-mapped from the snapshot): scores are exact cosines; "
        "higher finds more of the true neighbours, at the cost of more rows read per query (1: the k hits only).",
    )
    index_snapshot_every: int = Field(
        10_000,
        ge=1,
        description="Index writes logged (write-ahead log) between two snapshots of the index.",
    )
    max_search_terms: int = Field(16, ge=1, description="Most terms in one `/search` expression.")
    max_search_k: int = Field(1000, ge=1, description="Most hits one `/search` may ask for (`k`).")
    sdxl_model: str | None = Field(
        None,
        description="SDXL weights for `/generate` (path or hub id); unset = generation unavailable.",
    )
    generation_queue_limit: int = Field(
        8, ge=1, description="Most `/generate` jobs waiting for the generator; beyond it 429 + Retry-After."
    )
    generation_ttl_s: float = Field(
        3600.0, gt=0, description="Seconds a finished `/generate` job (and its image) is kept for `GET /generate/{id}`."
    )
    generation_max_steps: int = Field(100, ge=1, description="Most denoising steps one `/generate` job may ask for.")
    generation_max_side: int = Field(
        2048, ge=64, description="Largest `width` or `height` of a generated image, in pixels."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field("info", description="Server log level.")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: str) -> str:
        for origin in filter(None, (o.strip() for o in origins.split(","))):
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(f"PCCLIP_CORS_ORIGINS: {origin!r} is not an origin like https://host[:port]")
        return origins

    @property
    def sources_dir(self) -> Path:
        """Where the `milvus` backend keeps source images."""
        return self.index_sources_dir or self.index_dir / "sources"

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        """Every entry an address or a network (uvicorn would take a typo for a name that never matches)."""
        entries = [part.strip() for part in value.split(",") if part.strip()]
        if "*" in entries and len(entries) > 1:
            raise ValueError("* (trust any proxy) stands alone")
        for entry in entries:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address, a network (10.0.0.0/8) or *") from None
        return ",".join(entries)

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, key: SecretStr | None) -> SecretStr | None:
        # An empty key would lock every client out; stray whitespace (a newline from a secrets
        # file) would make the key clients were given never match.
        if key is not None and (not key.get_secret_value() or key.get_secret_value() != key.get_secret_value().strip()):
            raise ValueError("PCCLIP_API_KEY must be non-empty, without leading or trailing whitespace")
        return key


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment (a FastAPI dependency)."""
    return Settings()
