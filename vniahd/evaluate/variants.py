"""What a RoPE variant means for one backend: filled-in layout parameters, the per-pair axes of
its allocation, and the segments of one sample (positions come from :mod:`vniahd.rope`)."""

from __future__ import annotations

import dataclasses

import torch

#: Allocations whose section counts follow the model's own mrope_section when the variant fixes
#: none ("counts stay equal to M-RoPE's", DESIGN §2).
_MODEL_SECTION_ALLOCATIONS = ("mrope-blocks", "lta", "lta-sequential")

def resolve_variant(variant, backend, fps: float | None):
    """Fill a timed layout's defaults from the data: one temporal group is one dataset frame, so
    ``second_per_grid_t = 1/fps``; ``tokens_per_second`` comes from the model config."""
    if variant.layout != "mrope-timed":
        return variant
    from vniahd.rope import get_layout

    defaults = dict(get_layout("mrope-timed").defaults)
    if dict(variant.layout_params) != defaults:
        return variant  # the user set them explicitly
    params = dict(defaults)
    if fps:
        params["second_per_grid_t"] = 1.0 / float(fps)
    if "tokens_per_second" in backend.layout_params:
        params["tokens_per_second"] = float(backend.layout_params["tokens_per_second"])
    return dataclasses.replace(variant, layout_params=params)


def effective_sections(variant, rotary) -> tuple[int, int, int] | None:
    if variant.allocation == "uniform":
        return None
    if variant.sections is None and variant.allocation in _MODEL_SECTION_ALLOCATIONS:
        return tuple(rotary.sections)
    return variant.sections_for(rotary.num_pairs)


def variant_axes(variant, rotary) -> torch.Tensor:
    """Axis per rotary pair for ``variant`` on a model with ``rotary`` (see
    :func:`effective_sections`: the model's own sections unless the variant fixes them)."""
    from vniahd.rope import allocation_axes

    return allocation_axes(variant.allocation, rotary.num_pairs, effective_sections(variant, rotary))


def build_segments(n_before: int, frames: int, grid: tuple[int, int], n_after: int, frame_mode: str):
    from vniahd.rope import Image, Text, Video

    if frame_mode == "video":
        visual = [Video(frames, grid[0], grid[1])]
    else:
        visual = [Image(grid[0], grid[1]) for _ in range(frames)]
    return [Text(n_before), *visual, Text(n_after)]
