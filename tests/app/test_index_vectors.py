"""The vector column of a compressed-kind table alone: mapped parts, the in-memory tail, gathers
and chunks across them, and re-pointing written rows at their file (`settle`)."""

from __future__ import annotations

import numpy as np
import pytest

from app.index import vectors as column
from app.index.vectors import MappedVectors

DIM = 4


def rows(start: int, n: int) -> np.ndarray:
    return np.arange(start * DIM, (start + n) * DIM, dtype=np.float32).reshape(n, DIM)


def mapped(tmp_path, start: int, n: int) -> np.ndarray:
    path = tmp_path / f"rows-{start}-{n}.npy"
    np.save(path, rows(start, n))
    return np.load(path, mmap_mode="r")


def test_mapped_parts_are_kept_by_reference_and_other_rows_copied(tmp_path):
    vectors = MappedVectors(DIM)
    base = mapped(tmp_path, 0, 5)
    vectors.append(base)
    added = rows(5, 3)
    vectors.append(added)
    added[:] = -1  # the caller's array is its own: the tail holds a copy
    assert len(vectors) == 8 and vectors.in_memory == 3
    assert np.shares_memory(vectors._parts[0], base)
    assert np.array_equal(vectors[[7, 0, 5, 4]], rows(0, 8)[[7, 0, 5, 4]])  # any order, across part and tail
    assert np.array_equal(np.concatenate(list(vectors.chunks(2))), rows(2, 6))
    with pytest.raises(IndexError):
        vectors[[8]]


def test_a_map_after_in_memory_rows_keeps_the_row_order(tmp_path):
    vectors = MappedVectors(DIM)
    vectors.append(rows(0, 2))
    vectors.append(mapped(tmp_path, 2, 3))
    vectors.append(rows(5, 1))
    assert np.array_equal(vectors[range(6)], rows(0, 6)) and vectors.in_memory == 3


def test_chunks_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(column, "CHUNK_ROWS", 4)
    vectors = MappedVectors(DIM)
    vectors.append(mapped(tmp_path, 0, 10))
    vectors.append(rows(10, 5))
    chunks = list(vectors.chunks(3))
    assert [len(c) for c in chunks] == [4, 3, 4, 1] and np.array_equal(np.concatenate(chunks), rows(3, 12))


def test_written_rows_are_re_pointed_at_their_file(tmp_path):
    vectors = MappedVectors(DIM)
    vectors.append(mapped(tmp_path, 0, 4))
    vectors.append(rows(4, 3))
    delta = mapped(tmp_path, 4, 3)
    vectors.settle(4, delta)  # a delta snapshot wrote rows 4..6
    assert vectors.in_memory == 0 and np.shares_memory(vectors._parts[1], delta)
    assert np.array_equal(vectors[range(7)], rows(0, 7))
    vectors.append(rows(7, 2))
    vectors.settle(0, mapped(tmp_path, 0, 9))  # a full snapshot wrote every row
    assert len(vectors._parts) == 1 and vectors.in_memory == 0 and np.array_equal(vectors[range(9)], rows(0, 9))


def test_rows_of_the_tail_before_a_settle_stay_in_memory(tmp_path):
    vectors = MappedVectors(DIM)
    vectors.append(mapped(tmp_path, 0, 4))
    vectors.append(rows(4, 3))  # row 4 was in a delta whose re-pointing did not happen
    vectors.settle(5, mapped(tmp_path, 5, 2))
    assert vectors.in_memory == 1 and np.array_equal(vectors[range(7)], rows(0, 7))


@pytest.mark.parametrize(("start", "n"), [(2, 5), (4, 2)])  # not where a part ends; not every row since
def test_a_settle_that_does_not_fit_is_refused(tmp_path, start, n):
    vectors = MappedVectors(DIM)
    vectors.append(mapped(tmp_path, 0, 4))
    vectors.append(rows(4, 3))
    with pytest.raises(ValueError, match="mapped rows"):
        vectors.settle(start, mapped(tmp_path, start, n))
