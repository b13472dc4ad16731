"""What a RoPE variant means for one dataset and backend: filled-in layout parameters and the
segments of one sample (positions and per-pair axes come from :mod:`vniahd.rope`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import BackendLike
    from vniahd.rope import Segment, Variant


def resolve_variant(
    variant: Variant, backend: BackendLike, fps: float | None, frames_per_group: int = 1
) -> Variant:
    """Make ``variant`` concrete for this dataset and model: ``native`` becomes the model family's
    own variant (:func:`vniahd.models.families.native_variant`, the one place that decides it);
    a timed layout's defaults are filled from the data: one temporal group spans
    ``frames_per_group`` sampled frames, so ``second_per_grid_t = frames_per_group / fps``;
    ``tokens_per_second`` comes from the model config."""
    if variant.is_native:
        from vniahd.models.families import native_variant

        return native_variant(backend, fps, frames_per_group)
    if variant.layout != "mrope-timed":
        return variant
    from vniahd.rope import get_layout

    defaults = dict(get_layout("mrope-timed").defaults)
    if dict(variant.layout_params) != defaults:
        return variant  # the user set them explicitly
    params = dict(defaults)
    if fps:
        params["second_per_grid_t"] = float(frames_per_group) / float(fps)
    if "tokens_per_second" in backend.layout_params:
        params["tokens_per_second"] = float(backend.layout_params["tokens_per_second"])
    return dataclasses.replace(variant, layout_params=params)


def build_segments(
    n_before: int, frames: int, grid: tuple[int, int], n_after: int, frame_mode: str
) -> list[Segment]:
    from vniahd.rope import Image, Text, Video

    visual: list[Segment]
    if frame_mode == "video":
        visual = [Video(frames, grid[0], grid[1])]
    else:
        visual = [Image(grid[0], grid[1]) for _ in range(frames)]
    return [Text(n_before), *visual, Text(n_after)]
