"""Peak memory of one step (a sample, or a batch of samples), recorded as ``peak_mem_bytes``.

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` at the start of the
  step — the device's high-water mark of tensor memory during the step, weights and the shared
  prefix cache included (``peak_mem_kind = "cuda_max_allocated"``).
- CPU (Linux): the process's peak resident set size during the step. Writing ``5`` to
  ``/proc/self/clear_refs`` resets the kernel's RSS high-water mark (``VmHWM`` in
  ``/proc/self/status``; Documentation/filesystems/proc.rst), so VmHWM read after the step is the
  peak of this step alone. It counts the whole process (Python, weights, the memmap pages
  touched), not only tensors (``peak_mem_kind = "cpu_peak_rss"``).
- Elsewhere (no /proc): ``None``.

On the CPU the runner also fixes glibc's heap thresholds for the process
(:func:`retain_freed_heap`), so a step's peak RSS can include up to
:data:`HEAP_TRIM_THRESHOLD` of heap freed by earlier steps and kept for reuse.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _vm_hwm() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakMemory:
    """``start()`` before a step, ``read()`` after it."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.kind = "cuda_max_allocated" if self.device.type == "cuda" else "cpu_peak_rss"
        self._cpu_ok = True

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        if self._cpu_ok:
            try:
                _CLEAR.write_text("5")
            except OSError:
                self._cpu_ok = False

    def read(self) -> int | None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return int(torch.cuda.max_memory_allocated(self.device))
        return _vm_hwm() if self._cpu_ok else None


#: Allocations below this come from the heap, not from a fresh ``mmap`` (glibc's own ceiling).
HEAP_MMAP_THRESHOLD = 32 * 2**20
#: The heap's free top goes back to the kernel only beyond this.
HEAP_TRIM_THRESHOLD = 64 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_retained = False


def retain_freed_heap() -> bool:
    """Keep freed heap memory (up to :data:`HEAP_TRIM_THRESHOLD`) in the process for reuse.

    A forward pass on the CPU allocates and frees activations of a few MB. glibc's default,
    adaptive thresholds hand the heap's free top back to the kernel after almost every pass and
    the next pass page-faults it in again: on ``bench/eval_prefix.py``'s CPU run (many short
    passes over a shared prefix) that was 3x the reference arm's page faults and ~8 % of the wall
    time. Fixed thresholds (:data:`HEAP_MMAP_THRESHOLD`, :data:`HEAP_TRIM_THRESHOLD`) stop the
    churn. Process-wide and lasting (glibc has no way back to its adaptive policy); a no-op off
    glibc, and when the user set any ``MALLOC_*`` threshold in the environment (theirs stay).
    Returns whether the thresholds are in place."""
    global _retained
    if _retained:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _retained = bool(mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD)
    )
    return _retained
