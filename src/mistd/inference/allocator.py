"""The C allocator's setting for torch inference on the CPU: the `Predictor` calls
`retain_freed_memory` for every torch model it runs on the CPU. (onnxruntime keeps its own arena:
its sessions ran no faster with the setting, chal-ir-s int8 at 640x512, A/B in turn.)"""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt options (malloc.h) and the values `retain_freed_memory` sets
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_RETAIN = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
_retained: bool | None = None


def retain_freed_memory() -> bool:
    """Have the C allocator keep the memory torch frees for the next frame (glibc, Linux).

    A torch forward allocates its large tensors afresh; by default glibc serves blocks above
    128 KB from new memory maps and hands freed heap back to the kernel, so every frame pays page
    faults on ~10^4 pages (measured, chal-ir-s at 640x512 in compiled bf16: 52.5 -> 45.7 ms per
    frame; eager bf16 76.7 -> 58.8 ms). Allocations up to 32 MB then come from the heap, which
    keeps up to 1 GB freed and grows 64 MB at a time: the process holds its peak memory.

    Process-wide and once; `MISTD_RETAIN_MEMORY=0` in the environment leaves the allocator alone.
    Returns whether the settings are in force (False elsewhere than glibc)."""
    global _retained
    if _retained is None:
        _retained = False
        if sys.platform.startswith("linux") and os.environ.get("MISTD_RETAIN_MEMORY") != "0":
            try:
                libc = ctypes.CDLL("libc.so.6")
                _retained = all(libc.mallopt(option, value) == 1 for option, value in _RETAIN)
            except (OSError, AttributeError):  # another C library (musl): nothing to set
                pass
    return _retained
