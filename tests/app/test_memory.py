"""Freed memory goes back to the OS on request (app/memory.py): `malloc_trim` over the arenas,
now or in a thread of its own.

In a fresh process: blocks below glibc's mmap threshold are freed inside the heap, behind a block
still in use, so that free() alone cannot shrink the heap; `release_free_memory` must then hand
their pages back. Read from the process's own resident pages (/proc/self/statm).
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from quality.server import ROOT

PROBE = """
import ctypes, os, sys
import threading
from app.memory import release_free_memory, release_free_memory_soon

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

size = 64 << 10  # below glibc's initial mmap threshold (128 KiB): from the heap
blocks = [libc.malloc(size) for _ in range(2048)]  # 128 MiB
for block in blocks:
    libc.memset(block, 1, size)
pin = libc.malloc(size)  # in use after the others: the heap's top cannot shrink past it
for block in blocks:
    libc.free(block)
before = resident_mb()
if sys.argv[1] == "now":
    released = release_free_memory()
else:
    release_free_memory_soon()
    [thread.join() for thread in threading.enumerate() if thread.name == "pcclip-release-memory"]
    released = True
print(released, round(before - resident_mb()))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
@pytest.mark.parametrize("when", ["now", "soon"])
def test_free_heap_pages_go_back_to_the_os(when):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, when], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    released, given_back_mb = result.stdout.split()
    assert released == "True" and int(given_back_mb) >= 100
