"""The Milvus index backend: one collection of a Milvus server, or of a Milvus Lite file.

`MilvusIndex.open(uri, ...)` with `uri` a file path (`data/milvus.db`: Milvus Lite, in this
process) or `http(s)://host:19530` (a server or cluster; `token` = `user:password` or an API key).

The collection (`PCCLIP_MILVUS_COLLECTION`) holds one row per item:

    id        VARCHAR(256), primary key
    vector    FLOAT_VECTOR(embed_dim), unit length, HNSW index, COSINE metric
    metadata  JSON (checked against `app.index.metadata` on put)
    source    VARCHAR(4096), nullable: "blob:<sha256>" (bytes in `sources_dir`) or "path:<absolute path>"

and the properties `pcclip.fingerprint`, `pcclip.embed_dim` and `pcclip.format`: a collection
stamped by another model is refused (`IndexMismatch`). Every request uses Strong consistency,
so an acknowledged write is read back by the next request, from any client. Source images are
content-addressed files in `sources_dir` (fsynced before the row that names them is written),
as in the FAISS store, so `source_bytes` reads them back for a rebuild.

Durability, replication and concurrency are Milvus's: several processes may share a collection
(the added/replaced split a put reports is read just before the write, so a concurrent writer
can make it stale). pymilvus is imported only here: `pip install 'pcclip[milvus]'`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import InvalidInput, NotFound, NotReady
from app.index.backend import Hit, Item, NewItem, PutResult, check_stamp, redact
from app.index.blobs import SourceFiles
from app.index.filters import Filter, as_filter, milvus_string, to_milvus_expr
from app.index.metadata import metadata_problem
from app.index.validation import MAX_ID_CHARS, check_id, checked, unit_vector

log = logging.getLogger(__name__)

FORMAT = "1"
MAX_SOURCE_CHARS = 4096
MAX_TOPK = 16_384  # Milvus's limit on one search's `limit`
WRITE_BATCH = 512  # rows per upsert request (a request stays far below gRPC's 64 MiB)
READ_BATCH = 1000  # rows per query request (items, vectors)
HNSW = {"M": 16, "efConstruction": 200}
OUTPUT = ["id", "vector", "metadata", "source"]
MISMATCH_REMEDY = (
    "To serve this model, point PCCLIP_MILVUS_COLLECTION at another collection and index the images into it "
    "again (the source images stay in PCCLIP_INDEX_SOURCES_DIR); or serve the model that built this one."
)


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise NotReady(
            "PCCLIP_INDEX_BACKEND=milvus needs pymilvus and Milvus Lite: pip install 'pcclip[milvus]'"
        ) from None
    return pymilvus


class MilvusIndex:
    """The `IndexBackend` on a Milvus collection; open with `MilvusIndex.open`. Thread-safe
    (pymilvus clients are)."""

    def __init__(self, client: Any, *, uri: str, collection: str, fingerprint: str, embed_dim: int, sources_dir: Path):
        self._client = client
        self.uri = redact(uri)
        self.collection = collection
        self.fingerprint = fingerprint
        self.embed_dim = embed_dim
        self.sources_dir = sources_dir
        self._sources = SourceFiles(sources_dir)
        self._closed = False

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        uri: str,
        *,
        token: str | None = None,
        collection: str = "pcclip",
        fingerprint: str | None,
        embed_dim: int | None = None,
        spec: str | None = None,
        sources_dir: Path | str,
    ) -> MilvusIndex:
        """Connect and open (or create) `collection` for the model with `fingerprint`.

        Raises `IndexMismatch` when another model's embeddings are stamped on it, `NotReady` when
        Milvus cannot be reached or the collection is not a pcclip index, `NotFound` when it does
        not exist and `fingerprint` is None (which opens an existing one whatever its model).
        """
        pymilvus = _pymilvus()
        sources_dir = Path(sources_dir)
        sources_dir.mkdir(parents=True, exist_ok=True)
        where = f"milvus collection {collection!r} at {redact(uri)}"
        lite = "://" not in uri
        if lite:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        with _errors(where, "connect (Milvus Lite: one process per file; is another using it?)" if lite else "connect"):
            client = pymilvus.MilvusClient(uri=uri, token=token or "")
        try:
            with _errors(where, "open"):
                if not client.has_collection(collection):
                    if fingerprint is None or embed_dim is None:
                        raise NotFound(f"no {where}")
                    _create(pymilvus, client, collection, fingerprint, embed_dim)
                stamp = _read_stamp(client, collection, where)
                client.load_collection(collection)  # a reopened collection is released until loaded
            if fingerprint is not None:
                check_stamp(where, stamp, fingerprint, embed_dim, spec, MISMATCH_REMEDY)
        except BaseException:
            client.close()
            raise
        index = cls(
            client, uri=uri, collection=collection, fingerprint=stamp[0], embed_dim=stamp[1], sources_dir=sources_dir
        )
        log.info("%s open: %d items", where, len(index))
        return index

    # --- writes ----------------------------------------------------------------------------

    def put(self, items: Sequence[NewItem]) -> PutResult:
        """Add or replace items (upsert); returns once Milvus acknowledged them."""
        self._check_open()
        items = checked(items)
        vectors = [unit_vector(item.vector, self.embed_dim, f"items[{i}]") for i, item in enumerate(items)]
        try:
            sources = self._sources.store([item.source for item in items])
        except OSError as error:
            where = f"{self._where}: a source image could not be stored in {self.sources_dir}"
            raise NotReady(f"{where} ({error})") from None
        for i, source in enumerate(sources):
            if source is not None and len(source) > MAX_SOURCE_CHARS:
                raise InvalidInput(f"items[{i}].source: a path of {len(source)} characters; at most {MAX_SOURCE_CHARS}")
        rows = [
            {"id": item.id, "vector": vector.tolist(), "metadata": item.metadata or {}, "source": source}
            for item, vector, source in zip(items, vectors, sources, strict=True)
        ]
        replaced = set(self._present([item.id for item in items]))
        with _errors(self._where, "put"):
            for start in range(0, len(rows), WRITE_BATCH):
                self._client.upsert(self.collection, rows[start : start + WRITE_BATCH])
        return PutResult(
            added=[item.id for item in items if item.id not in replaced],
            replaced=[item.id for item in items if item.id in replaced],
        )

    def delete(self, *item_ids: str) -> None:
        """Remove items (`NotFound` naming the first absent one: then none is removed)."""
        self._check_open()
        for item_id in item_ids:
            check_id(item_id)
        ids = list(dict.fromkeys(item_ids))
        present = set(self._present(ids))
        for item_id in ids:
            if item_id not in present:
                raise NotFound(f"no indexed item {item_id!r}")
        with _errors(self._where, "delete"):
            for start in range(0, len(ids), READ_BATCH):
                self._client.delete(self.collection, filter=_id_expr("in", ids[start : start + READ_BATCH]))

    # --- reads -----------------------------------------------------------------------------

    def __len__(self) -> int:
        with _errors(self._where, "count"):
            rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and bool(self._present([item_id]))

    def get(self, item_id: str) -> Item:
        rows = self._rows([item_id], OUTPUT)
        if not rows:
            raise NotFound(f"no indexed item {item_id!r}")
        return _item(rows[0])

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Embeddings of indexed items (`NotFound` naming the first absent one).  -> (N, D)"""
        found = {row["id"]: row["vector"] for row in self._rows(list(dict.fromkeys(ids)), ["id", "vector"])}
        for item_id in ids:
            if item_id not in found:
                raise NotFound(f"no indexed item {item_id!r}")
        return np.array([found[i] for i in ids], dtype=np.float32).reshape(len(ids), self.embed_dim)

    def items(self) -> Iterator[Item]:
        """Every item, in batches of `READ_BATCH` (a write during the walk may or may not be seen)."""
        with _errors(self._where, "items"):
            iterator = self._client.query_iterator(self.collection, batch_size=READ_BATCH, output_fields=OUTPUT)
        try:
            while True:
                with _errors(self._where, "items"):
                    batch = iterator.next()
                if not batch:
                    return
                yield from map(_item, batch)
        finally:
            iterator.close()

    def source_bytes(self, source: str) -> bytes:
        return self._sources.read(source)

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        filter: Filter | Mapping[str, Any] | None = None,
        exclude: Sequence[str] = (),
        min_score: float | None = None,
    ) -> list[Hit]:
        """The `k` items most similar to `query` (cosine), best first: those `filter` matches
        (a `Filter`, or a raw one, parsed here), never those in `exclude`, none below `min_score`."""
        if not 1 <= k <= MAX_TOPK:
            raise InvalidInput(f"k: {k}; Milvus searches return 1 to {MAX_TOPK} hits")
        q = unit_vector(query, self.embed_dim, "query")
        parsed = as_filter(filter)
        clauses = [to_milvus_expr(parsed)] if parsed else []
        if exclude:
            clauses.append(_id_expr("not in", list(dict.fromkeys(exclude))))
        with _errors(self._where, "search"):
            results = self._client.search(
                self.collection,
                [q.tolist()],
                limit=k,
                filter=" and ".join(f"({c})" for c in clauses),
                output_fields=["vector", "metadata"],
                search_params={"metric_type": "COSINE", "params": {"ef": max(64, k)}},
            )
        hits = []
        for found in results[0]:
            item = _item({"id": found["id"], **found["entity"]})
            if min_score is None or found["distance"] >= min_score:
                hits.append(Hit(item.id, float(found["distance"]), item.metadata, item.vector, item.metadata_problem))
        return hits

    def _present(self, ids: list[str]) -> list[str]:
        """Which of `ids` are indexed."""
        return [row["id"] for row in self._rows(ids, ["id"])]

    def _rows(self, ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        """The rows of `ids` (invalid ids, which no row has, are skipped without asking)."""
        valid = [i for i in ids if isinstance(i, str) and 0 < len(i) <= MAX_ID_CHARS]
        rows: list[dict[str, Any]] = []
        with _errors(self._where, "read"):
            for start in range(0, len(valid), READ_BATCH):
                chunk = valid[start : start + READ_BATCH]
                rows += self._client.query(self.collection, filter=_id_expr("in", chunk), output_fields=fields)
        return rows

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "milvus",
            "size": len(self),
            "fingerprint": self.fingerprint,
            "embed_dim": self.embed_dim,
            "index_type": "hnsw",
            "exact": False,
            "uri": self.uri,
            "collection": self.collection,
            "sources_dir": str(self.sources_dir),
        }

    # --- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    @property
    def _where(self) -> str:
        return f"milvus collection {self.collection!r} at {self.uri}"

    def _check_open(self) -> None:
        if self._closed:
            raise NotReady("the index is closed")

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _errors(where: str, action: str) -> Iterator[None]:
    """A Milvus failure as `NotReady` naming the collection (the server's message, never the token)."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as error:
        raise NotReady(f"{where}: {action} failed: {error.message}") from None


def _id_expr(op: str, ids: list[str]) -> str:
    return f"id {op} [{', '.join(map(milvus_string, ids))}]"


def _item(row: Mapping[str, Any]) -> Item:
    """A row as served: metadata that breaks the rules (another writer's) withheld as {}."""
    metadata = row.get("metadata") or {}
    problem = metadata_problem(metadata)
    vector = np.asarray(row["vector"], dtype=np.float32)
    return Item(row["id"], {} if problem else metadata, row.get("source") or None, vector, problem)


def _create(pymilvus: Any, client: Any, collection: str, fingerprint: str, embed_dim: int) -> None:
    types = pymilvus.DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description="pcclip index")
    schema.add_field("id", types.VARCHAR, is_primary=True, max_length=MAX_ID_CHARS)
    schema.add_field("vector", types.FLOAT_VECTOR, dim=embed_dim)
    schema.add_field("metadata", types.JSON)
    schema.add_field("source", types.VARCHAR, max_length=MAX_SOURCE_CHARS, nullable=True)
    params = client.prepare_index_params()
    params.add_index("vector", index_type="HNSW", metric_type="COSINE", params=HNSW)
    stamp = {"pcclip.fingerprint": fingerprint, "pcclip.embed_dim": str(embed_dim), "pcclip.format": FORMAT}
    client.create_collection(
        collection, schema=schema, index_params=params, consistency_level="Strong", properties=stamp
    )


def _read_stamp(client: Any, collection: str, where: str) -> tuple[str, int]:
    """(fingerprint, embed_dim) stamped on the collection; `NotReady` when it is not a pcclip index."""
    described = client.describe_collection(collection)
    properties = described.get("properties") or {}
    fields = {f["name"]: f for f in described.get("fields", [])}
    fingerprint, dim = properties.get("pcclip.fingerprint"), str(properties.get("pcclip.embed_dim"))
    vector_dim = (fields.get("vector") or {}).get("params", {}).get("dim")
    if not fingerprint or not dim.isdigit() or set(OUTPUT) - set(fields) or int(vector_dim or 0) != int(dim):
        raise NotReady(
            f"{where} is not a pcclip index (no pcclip.fingerprint/pcclip.embed_dim stamp, or other fields): "
            "name another collection (PCCLIP_MILVUS_COLLECTION)"
        )
    if properties.get("pcclip.format") != FORMAT:
        raise NotReady(f"{where} has format {properties.get('pcclip.format')!r}; this server reads format {FORMAT}")
    return fingerprint, int(dim)
