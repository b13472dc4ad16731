"""Qwen2-VL pixel preprocessing done by us (no torchvision build matches our torch; docs/footguns.md).

Reproduces transformers' ``Qwen2VLImageProcessorPil`` (the PIL/NumPy image processor):

1. ``smart_resize``: round (H, W) to multiples of ``patch_size · merge_size`` keeping the pixel
   count within ``[min_pixels, max_pixels]`` (formula from the Qwen2-VL processor);
2. resize with PIL (bicubic) when the size changes;
3. rescale by 1/255 and normalise with the processor's mean/std (OpenAI CLIP values by default);
4. patchify: a temporal group of ``temporal_patch_size`` frames becomes
   ``[grid_h · grid_w, C · tp · p · p]`` rows ordered by merge block (``gh/m, gw/m, m, m``), each row
   laid out ``(C, tp, p, p)`` — the order the vision tower's Conv3d patch embed expects.

A single image fills its temporal group by repetition, exactly as the image processor does. For
``T`` frames with ``T`` a multiple of ``tp`` the same function gives the video layout
(consecutive frames form one group), which is what the Qwen2-VL video processor produces.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from vniahd.errors import VniahdError

#: OpenAI CLIP normalisation, the Qwen2-VL processor default.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class PatchifyConfig:
    """Every parameter that changes the pixels the vision tower sees (part of the cache key)."""

    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    image_mean: tuple[float, float, float] = field(default=CLIP_MEAN)
    image_std: tuple[float, float, float] = field(default=CLIP_STD)
    rescale_factor: float = 1 / 255
    resample: str = "bicubic"

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_mean"], d["image_std"] = list(self.image_mean), list(self.image_std)
        return d

    @classmethod
    def from_preprocessor_config(cls, cfg: dict) -> PatchifyConfig:
        """Read a checkpoint's ``preprocessor_config.json`` (missing keys keep the defaults)."""
        size = cfg.get("size") or {}
        kwargs: dict = {}
        for key in ("patch_size", "temporal_patch_size", "merge_size"):
            if key in cfg:
                kwargs[key] = int(cfg[key])
        min_px = cfg.get("min_pixels", size.get("shortest_edge", size.get("min_pixels")))
        max_px = cfg.get("max_pixels", size.get("longest_edge", size.get("max_pixels")))
        if min_px is not None:
            kwargs["min_pixels"] = int(min_px)
        if max_px is not None:
            kwargs["max_pixels"] = int(max_px)
        if "image_mean" in cfg:
            kwargs["image_mean"] = tuple(float(x) for x in cfg["image_mean"])
        if "image_std" in cfg:
            kwargs["image_std"] = tuple(float(x) for x in cfg["image_std"])
        if "rescale_factor" in cfg:
            kwargs["rescale_factor"] = float(cfg["rescale_factor"])
        return cls(**kwargs)


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """Target (H, W): multiples of ``factor``, pixel count in range, aspect ratio kept.

    Same rule as Qwen2-VL's image processor (``smart_resize`` in transformers' qwen2_vl).
    """
    if max(height, width) / min(height, width) > 200:
        raise VniahdError(f"frame aspect ratio {height}x{width} exceeds 200; Qwen2-VL cannot take it")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resized_size(frame_size: tuple[int, int], cfg: PatchifyConfig) -> tuple[int, int]:
    return smart_resize(frame_size[0], frame_size[1], cfg.factor, cfg.min_pixels, cfg.max_pixels)


def merged_grid(frame_size: tuple[int, int], cfg: PatchifyConfig) -> tuple[int, int]:
    """(H, W) of merged visual tokens per temporal group for frames of ``frame_size``."""
    h, w = resized_size(frame_size, cfg)
    return h // cfg.factor, w // cfg.factor


def normalize_frames(frames: np.ndarray, cfg: PatchifyConfig) -> np.ndarray:
    """uint8 [N, H, W, 3] → float32 [N, 3, H', W'] resized, rescaled and normalised."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VniahdError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    h, w = resized_size(frames.shape[1:3], cfg)
    if (h, w) != tuple(frames.shape[1:3]):
        from PIL import Image

        resample = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}[cfg.resample]
        frames = np.stack([np.asarray(Image.fromarray(f).resize((w, h), resample=resample)) for f in frames])
    # The HF processor rescales in float64 and normalises in float32 (image_transforms.rescale /
    # normalize); follow it so the result matches to float32 rounding.
    x = (frames.astype(np.float64) * cfg.rescale_factor).astype(np.float32)
    mean = np.asarray(cfg.image_mean, dtype=np.float32)
    std = np.asarray(cfg.image_std, dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def patchify_group(pixels: np.ndarray, cfg: PatchifyConfig) -> np.ndarray:
    """Normalised float [T, C, H, W] (T a multiple of tp, or 1 = repeat to fill) → rows
    ``[grid_t · grid_h · grid_w, C · tp · p · p]`` in the HF processor's order."""
    p, m, tp = cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size
    if pixels.shape[0] == 1 and tp > 1:
        pixels = np.repeat(pixels, tp, axis=0)  # an image fills its temporal group by repetition
    t, c, h, w = pixels.shape
    if t % tp:
        raise VniahdError(f"{t} frames do not fill temporal groups of {tp}")
    gt, gh, gw = t // tp, h // p, w // p
    x = pixels.reshape(gt, tp, c, gh // m, m, p, gw // m, m, p)
    # → (gt, gh/m, gw/m, m_h, m_w, C, tp, p_h, p_w)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, c * tp * p * p))


def patchify_frames(frames: np.ndarray, cfg: PatchifyConfig) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Temporal groups → vision-tower rows. uint8 ``[N, H, W, 3]``: each frame is its own group
    (repeated ``tp`` times, as the processor does for an image); ``[N, T, H, W, 3]`` with
    ``T = tp``: the T consecutive frames of group n form it (as the processor does for a video).

    Returns the concatenated rows ``[N · gh · gw, C · tp · p · p]`` and the per-group grid
    ``(1, gh, gw)`` in patches (pass ``[[1, gh, gw]] * N`` as ``grid_thw`` to the vision tower).
    """
    frames = np.asarray(frames)
    if frames.ndim == 5:
        n, t = frames.shape[:2]
        if t not in (1, cfg.temporal_patch_size):
            raise VniahdError(
                f"a temporal group holds 1 or {cfg.temporal_patch_size} frames for this vision tower, "
                f"got {t}; generate the dataset with --frames-per-group 1 or {cfg.temporal_patch_size}"
            )
        flat = normalize_frames(frames.reshape(n * t, *frames.shape[2:]), cfg)
        pixels = flat.reshape(n, t, *flat.shape[1:])
    else:
        pixels = normalize_frames(frames, cfg)[:, None]
    rows = [patchify_group(pixels[i], cfg) for i in range(len(pixels))]
    gh, gw = pixels.shape[3] // cfg.patch_size, pixels.shape[4] // cfg.patch_size
    return np.concatenate(rows, axis=0), (1, gh, gw)
