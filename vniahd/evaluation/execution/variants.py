"""What a RoPE variant means for one dataset and backend: filled-in layout parameters and the
segments of one sample (positions and per-pair axes come from :mod:`vniahd.rope`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from vniahd.rope.layouts import get_layout, timed_params

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import BackendLike
    from vniahd.rope import Variant


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
    filled = timed_params(variant.layout, backend.layout_params, fps, frames_per_group)
    defaults = dict(get_layout(variant.layout).defaults)
    if not filled or dict(variant.layout_params) != defaults:
        return variant  # not a timed layout, or the user set its parameters explicitly
    return dataclasses.replace(variant, layout_params={**defaults, **filled})
