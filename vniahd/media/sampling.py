"""Which source frames to read, and how to resize them.

Pure functions (no I/O) so the exact indices can be checked by hand in tests.

Frame-rate sampling has two named methods:

- ``"reference"`` (default): the V-NIAH reference scripts (LongVA's ``produce_haystack_embedding.py``,
  reused by VideoRoPE) take ``step = round(avg_fps)`` and read indices ``0, step, 2*step, ...`` for
  1 fps. We generalise that to ``step = max(1, round(src_fps / fps))`` with Python's ``round``
  (ties to even, as in the reference). For a 25 fps source at 1 fps: 0, 25, 50, ...; for 29.97 fps:
  0, 30, 60, ... (slightly slower than real time, exactly as the published haystacks were made).
- ``"exact"``: index ``k`` is ``floor(k * src_fps / fps + 1/2)`` computed with exact fractions, so
  long videos at non-integer rates do not drift (29.97 fps at 1 fps: k*30000/1001 rounded half-up,
  i.e. 0, 30, 60, ..., and frame 29970 for k = 1000 where ``"reference"`` gives 30000).

Both methods stop at the last index below ``num_frames``. When ``src_fps / fps`` is an integer they
give identical indices.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from vniahd.errors import UnknownNameError, VniahdError

FPS_METHODS = ("reference", "exact")


def as_fraction(rate: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction; float rates such as 29.97002997 become 30000/1001.

    decord reports floats and PyAV fractions; snapping both to the nearest fraction with a
    denominator ≤ 1001000 makes the two backends choose the same indices.
    """
    return Fraction(rate).limit_denominator(1_001_000)


def fps_indices(
    num_frames: int, src_fps: float | Fraction, fps: float, method: str = "reference"
) -> np.ndarray:
    """Source frame indices (int64, increasing) that sample a ``num_frames`` video at ``fps``."""
    if method not in FPS_METHODS:
        raise UnknownNameError("fps sampling method", method, FPS_METHODS)
    if not fps or fps <= 0:
        raise VniahdError(f"sampling rate must be positive, got fps={fps}; pass e.g. --fps 1")
    if src_fps is None or float(src_fps) <= 0:
        raise VniahdError("the video reports no frame rate; sample it with num_frames=N instead of fps")
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if method == "reference":
        step = max(1, round(float(src_fps) / float(fps)))
        return np.arange(0, num_frames, step, dtype=np.int64)
    ratio = as_fraction(src_fps) / as_fraction(fps)
    # floor(k*ratio + 1/2) < num_frames  <=>  k*ratio < num_frames - 1/2
    count = int((num_frames - Fraction(1, 2)) / ratio)
    count += 1 if count * ratio < num_frames - Fraction(1, 2) else 0
    num, den = ratio.numerator, ratio.denominator
    k = np.arange(count, dtype=np.int64)
    # floor((2*k*num + den) / (2*den)) is floor(k*ratio + 1/2) in integer arithmetic
    return (2 * k * num + den) // (2 * den)


def even_indices(num_frames: int, n: int) -> np.ndarray:
    """``n`` evenly spaced indices over ``0..num_frames-1``, first and last included.

    Index ``k`` is ``floor(k*(num_frames-1)/(n-1) + 1/2)`` (integer arithmetic, half rounds up);
    ``n = 1`` gives ``[0]``. If ``n > num_frames`` some frames repeat.
    """
    if n <= 0:
        raise VniahdError(f"num_frames must be a positive integer, got {n}")
    if num_frames <= 0:
        raise VniahdError("cannot sample frames from a video with no frames")
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    k = np.arange(n, dtype=np.int64)
    return (2 * k * (num_frames - 1) + (n - 1)) // (2 * (n - 1))


def parse_size(size: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """``"252x448"`` or ``(252, 448)`` → ``(H, W)``; ``None`` stays ``None`` (native size)."""
    if size is None:
        return None
    if isinstance(size, str):
        parts = size.lower().replace("×", "x").split("x")
        try:
            h, w = (int(p) for p in parts)
        except ValueError:
            raise VniahdError(f"size {size!r} is not HxW; write it like 252x448 (height x width)") from None
    else:
        try:
            h, w = (int(v) for v in size)
        except (TypeError, ValueError):
            raise VniahdError(f"size {size!r} is not (height, width); pass e.g. (252, 448)") from None
    if h <= 0 or w <= 0:
        raise VniahdError(f"size must be positive, got {h}x{w}; write it like 252x448")
    return h, w


#: How frames are resized: ``"pil"`` (default) or ``"torch-bicubic"`` (the released V-NIAH-D code).
RESIZE_METHODS = ("pil", "torch-bicubic")


def check_resize(method: str) -> str:
    if method not in RESIZE_METHODS:
        raise UnknownNameError("resize method", method, RESIZE_METHODS)
    return method


def resize_frame(frame: np.ndarray, size: tuple[int, int] | None, method: str = "pil") -> np.ndarray:
    """Resize one uint8 RGB frame to ``(H, W)`` with antialiased bicubic. Same size → returned as is.

    - ``"pil"`` (default): PIL ``Image.BICUBIC`` (antialiased when shrinking). Plain OpenCV
      ``INTER_CUBIC`` would alias when shrinking 720p to 252x448.
    - ``"torch-bicubic"``: :func:`torch_bicubic_resize`, what the released V-NIAH-D scripts did
      with torchvision's tensor resize. It differs from PIL by rounding: about one channel value
      in eight by 1, a few by up to 7 when upscaling.
    """
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    if method == "torch-bicubic":
        return torch_bicubic_resize(frame, size)
    check_resize(method)
    from PIL import Image

    h, w = size
    return np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BICUBIC))


def torch_bicubic_resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``[..., H, W, 3]`` frames resized to ``size`` as torchvision resizes uint8 tensors
    (``transforms.functional.resize(x, size, InterpolationMode.BICUBIC, antialias=True)``, used by
    the released ``produce_haystack_embedding.py``): interpolate in float32 with
    ``torch.nn.functional.interpolate(mode="bicubic", antialias=True, align_corners=False)``,
    clamp to 0..255, round half to even, back to uint8. No torchvision needed: the kernel is
    torch's own. Same size → returned as is (torchvision returns the input unchanged too).
    """
    import torch

    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim < 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected uint8 [..., H, W, 3] frames, got {arr.dtype} {arr.shape}")
    h, w = int(size[0]), int(size[1])
    if arr.shape[-3:-1] == (h, w):
        return arr
    lead = arr.shape[:-3]
    x = torch.from_numpy(np.ascontiguousarray(arr).reshape(-1, *arr.shape[-3:])).permute(0, 3, 1, 2)
    y = torch.nn.functional.interpolate(
        x.float(), size=(h, w), mode="bicubic", antialias=True, align_corners=False
    )
    y = y.clamp(0, 255).round().to(torch.uint8)
    return y.permute(0, 2, 3, 1).contiguous().numpy().reshape(*lead, h, w, 3)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` of /proc/meminfo, else
    psutil), or ``None`` where neither can tell."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # type: ignore[import-untyped]

        return int(psutil.virtual_memory().available)
    except Exception:  # no psutil, or a platform it cannot read
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_frames_fit(num_frames: int, size: tuple[int, int], disk: Path | None) -> None:
    """Refuse, before anything is allocated, frames that cannot fit: one frame (decoded and
    resized in memory) in the available memory, and all of them in memory (``disk`` None) or in
    the free space of ``disk`` (the directory of the memory-mapped cache file)."""
    import shutil

    h, w = size
    per_frame = h * w * 3
    total = per_frame * num_frames
    memory = available_memory()
    what = f"--size {h}x{w} is {h}x{w}x3 = {_gb(per_frame)} per frame"
    if memory is not None and 2 * per_frame > memory:
        raise VniahdError(
            f"{what}; decoding needs about 2 x that = {_gb(2 * per_frame)}, but only {_gb(memory)} "
            "of memory is available; use a smaller --size, e.g. 252x448"
        )
    if disk is None:
        if memory is not None and total > memory:
            raise VniahdError(
                f"{what} x {num_frames} frames = {_gb(total)}, but only {_gb(memory)} of memory is "
                "available; use a smaller --size or a lower --fps"
            )
        return
    free = shutil.disk_usage(disk).free
    if total > free:
        raise VniahdError(
            f"{what} x {num_frames} frames = {_gb(total)}, but {disk} has only {_gb(free)} free; "
            "use a smaller --size or a lower --fps, or free space (or set VNIAHD_CACHE elsewhere)"
        )
