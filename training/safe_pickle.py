"""Reading data sets that ship as pickles without letting the file run code.

A pickle names the globals it needs (``numpy.core.multiarray._reconstruct``, ``os.system``, …)
and the unpickler imports and calls them. `RestrictedUnpickler` resolves only the globals of an
explicit allow-list given by the caller, so a tampered file raises `pickle.UnpicklingError`
instead of running anything. `NUMPY_ARRAYS` allows what a pickled numpy array needs, under
both module names numpy has used (``numpy.core`` before 2.0, ``numpy._core`` since).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np

try:  # numpy >= 2 keeps the pickled helpers in numpy._core
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]  # the same module, 1.x name

Globals = Mapping[tuple[str, str], object]  # (module, name) -> the object it resolves to

NUMPY_ARRAYS: Globals = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in `allowed`; any other raises UnpicklingError."""

    def __init__(self, file, allowed: Globals, *, encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}; allowed: "
                + ", ".join(f"{m}.{n}" for m, n in self.allowed)
            ) from None


def restricted_load(path: Path, allowed: Globals, *, encoding: str = "ASCII") -> object:
    """Unpickle `path` resolving only `allowed` globals. Python 2 pickles (CIFAR's) need
    encoding="latin1": their byte strings then read as str, as numpy expects."""
    with open(path, "rb") as file:
        return RestrictedUnpickler(file, allowed, encoding=encoding).load()
