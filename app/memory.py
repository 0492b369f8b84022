"""Process memory: freed image memory goes back to the operating system after a burst (glibc's malloc).

glibc keeps freed blocks in its arenas for reuse, and serves a block of at least its "mmap
threshold" with a mapping of its own, unmapped on free. By default that threshold rises to the
size of each such block freed (up to 32 MiB), so decoded images (Pillow allocates them in blocks
of up to 16 MiB) come from the arenas, and a burst of them leaves the process larger for good:
`bench/pixels.py` (the issue-14 attack, `tiny`) left 1,117 MB resident against 968 before, 1,529 MB
with the pixel budget lifted (`PCCLIP_MAX_PIXELS_IN_FLIGHT=1000000000`).

The model must keep its memory, though: a forward pass allocates and frees the same large
activations at every layer, and reused from the arenas they cost nothing; as mappings of their
own (a threshold fixed at 1 MiB, this module's earlier policy) every one is mapped and faulted in
anew — with ViT-B-32 served on 2 cores, ~10,000 page faults per image and a forward of 40 ms
against 31 ms per image.

So the threshold stays glibc's, and once no request is decoding any more after a burst of decoded
pixels, `release_free_memory` gives every free page of every arena back (`malloc_trim`): after
the attack the process holds 986 MB (1,084 with the budget lifted; 973 and 994 with the threshold
fixed), and the model's next forward faults its working set in once. A trim takes 7–10 ms with
ViT-B-32 loaded, so servers call `release_free_memory_soon`: in a thread of its own, never on the
event loop.
"""

from __future__ import annotations

import ctypes
import functools
import platform
import threading


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    return ctypes.CDLL("libc.so.6") if platform.libc_ver()[0] == "glibc" else None


def release_free_memory() -> bool:
    """Give the free pages of every malloc arena back to the operating system; whether any
    were. False where the C library is not glibc (nothing to do there)."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


_releasing = threading.Lock()  # held while a release runs


def release_free_memory_soon() -> None:
    """`release_free_memory` in a thread of its own, unless one is already running."""
    if not _releasing.acquire(blocking=False):
        return

    def release() -> None:
        try:
            release_free_memory()
        finally:
            _releasing.release()

    threading.Thread(target=release, name="pcclip-release-memory", daemon=True).start()
