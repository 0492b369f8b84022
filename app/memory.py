"""Process memory: large freed blocks go back to the operating system (glibc's malloc).

glibc serves a block of at least its "mmap threshold" with a mapping of its own, unmapped on
free. By default that threshold moves: each time such a block is freed it rises to the block's
size (up to 32 MiB), so from then on decoded images (Pillow allocates them in blocks of up to
16 MiB) come from the heap's arenas, and a burst of them leaves the process gigabytes larger
for good — measured with `bench/pixels.py`: 1.2 GB before, 3.0–3.3 GB after the issue-14 attack.
A fixed threshold keeps every large block a mapping of its own (1.2 GB after).
"""

from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3  # mallopt parameter, from glibc's <malloc.h>
LARGE_BLOCK_BYTES = 1 << 20


def return_large_blocks_to_the_os(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes for this process; False where the C
    library is not glibc (nothing to do there) or refuses the value."""
    if platform.libc_ver()[0] != "glibc":
        return False
    return ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, threshold) == 1
