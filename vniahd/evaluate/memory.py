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
"""

from __future__ import annotations

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
