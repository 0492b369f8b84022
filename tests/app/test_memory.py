"""Large freed blocks go back to the OS: glibc's mmap threshold stays fixed (app/memory.py).

Checked with glibc's own counters (`mallinfo2`: bytes in mmapped blocks), in a fresh process so
that the threshold starts at glibc's default; no assertion on the machine's resident memory.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from quality.server import ROOT

PROBE = """
import ctypes, sys
from app.memory import return_large_blocks_to_the_os

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "fixed":
    assert return_large_blocks_to_the_os()
size = 16 << 20  # one block of a decoded image
libc.free(libc.malloc(size))  # by default this raises the threshold past 16 MiB
before = libc.mallinfo2().hblkhd
block = libc.malloc(size)
print(libc.mallinfo2().hblkhd - before >= size)  # the second block is a mapping of its own
libc.free(block)
"""


def mapped_after_a_free(mode: str) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip() == "True"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_large_blocks_stay_mappings_of_their_own_after_one_is_freed():
    assert not mapped_after_a_free("default")  # glibc's moving threshold: the heap keeps them
    assert mapped_after_a_free("fixed")
