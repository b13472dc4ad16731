"""Named RoPE variants (docs/rope-math.md): the VideoRoPE paper's and the native model ones here;
each published design after VideoRoPE registers its own from :mod:`vniahd.rope.published`.

- :data:`PRESETS`: the named variants users pass as ``--variant`` (each cites its source).
- :func:`preset_variant`: a preset, optionally with overridden parameters.
- :func:`vniahd.rope.variant.make_variant`: any layout × any allocation × parameters.

Spec strings and JSON variant files (``parse_variant``) are read by :mod:`vniahd.rope.specs`.
"""

from __future__ import annotations

from typing import Any

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.rope.variant import NATIVE, Variant, _format_spec, make_variant

__all__ = [
    "NATIVE",
    "NATIVE_VARIANT",
    "PRESETS",
    "Variant",
    "make_variant",
    "preset_variant",
    "register_preset",
]


def _preset(
    name: str,
    layout: str,
    allocation: str,
    description: str,
    source: str,
    sections: tuple[int, int, int] | None = None,
    **params: Any,
) -> Variant:
    return make_variant(
        layout, allocation, name=name, sections=sections, description=description, source=source, **params
    )


_VIDEOROPE = "VideoRoPE (Wei et al., ICML 2025, arXiv 2502.05173)"

#: Every preset (table in docs/rope-math.md), each with the paper table / equation or code it comes from.
PRESETS: dict[str, Variant] = {
    v.name: v
    for v in (
        _preset(
            "vanilla",
            "vanilla",
            "uniform",
            "1D RoPE over the flattened sequence",
            f"RoFormer (Su et al., arXiv 2104.09864) Eq. 34; {_VIDEOROPE} Table 3 'Vanilla RoPE'",
        ),
        _preset(
            "tad",
            "tad",
            "uniform",
            "TAD-RoPE: 1D index plus a per-text-token / per-frame time index",
            f"{_VIDEOROPE} Table 3 'TAD-RoPE'; layout as in the VideoRoPE release code",
        ),
        _preset(
            "mrope",
            "mrope",
            "mrope-blocks",
            "Qwen2-VL M-RoPE: t/h/w streams, t on the highest frequencies",
            "Qwen2-VL (arXiv 2409.12191) §2.1; transformers Qwen2VLRotaryEmbedding "
            f"(mrope_section [16,24,24]); {_VIDEOROPE} Table 3 'M-RoPE'",
        ),
        _preset(
            "videorope",
            "diagonal",
            "lta",
            "VideoRoPE: diagonal layout (δ=2) + low-frequency temporal allocation",
            f"{_VIDEOROPE} §3 Eq. 7 (DL + ATS, δ=2) and LTA; Table 3 'VideoRoPE'; "
            "text after the video as in the released code",
            delta=2.0,
        ),
        _preset(
            "dl",
            "diagonal",
            "mrope-blocks",
            "ablation: diagonal layout (δ=1) with M-RoPE's frequency blocks",
            f"{_VIDEOROPE} component ablation (Tables 5–8, DL row)",
            delta=1.0,
        ),
        _preset(
            "dl-lta",
            "diagonal",
            "lta",
            "ablation: diagonal layout (δ=1) + LTA, without temporal spacing",
            f"{_VIDEOROPE} component ablation (Tables 5–8, LTA+DL row)",
            delta=1.0,
        ),
        _preset(
            "lta",
            "mrope",
            "lta",
            "ablation: M-RoPE positions + low-frequency temporal allocation",
            f"{_VIDEOROPE} component ablation (Tables 5–8, LTA row)",
        ),
        _preset(
            "videorope-seq-xy",
            "diagonal",
            "lta-sequential",
            "ablation: VideoRoPE with sequential (not interleaved) h/w frequencies",
            f"{_VIDEOROPE} Table 7 (x-y allocation ablation)",
            delta=2.0,
        ),
        _preset(
            "mrope-timed",
            "mrope-timed",
            "mrope-blocks",
            "Qwen2.5-VL M-RoPE with absolute-time temporal index",
            "Qwen2.5-VL (arXiv 2502.13923) §2.1; transformers Qwen2_5_VLModel.get_rope_index "
            "(defaults second_per_grid_t=1.0: 2 fps, temporal_patch_size 2; tokens_per_second=2)",
        ),
        _preset(
            "mrope-interleaved",
            "mrope",
            "interleaved",
            "M-RoPE positions with Qwen3-VL's interleaved t/h/w allocation",
            "Qwen3-VL; transformers Qwen3VLTextRotaryEmbedding.recomposition_frequencies "
            "(mrope_section [24,20,20])",
        ),
        _preset(
            "videorope-released",
            "diagonal",
            "mrope-blocks",
            "the published V-NIAH-D 'videorope' run: VideoRoPE's diagonal layout (δ=2) with "
            "M-RoPE's frequency blocks, no LTA",
            f"{_VIDEOROPE} release code, vision_niah_d/eval_vision_niah_interrupt.py: it installs "
            "the LTA rotary function only when the rope name contains 'm_modify', 't_only' or "
            "'change_freq', and eval_debug_interrupt.sh runs rope_type 'videorope', which "
            "contains none; so the Table 3 V-NIAH-D 'VideoRoPE' numbers used these frequencies "
            "(docs/footguns.md)",
            delta=2.0,
        ),
    )
}

#: The VideoRoPE paper's presets and the models' own (the rest are registered by
#: :mod:`vniahd.rope.published`; :func:`published_presets`).
PAPER_PRESETS = tuple(PRESETS)


#: ``--variant native``: not a preset (its layout and allocation depend on the model), resolved
#: per model family by :func:`vniahd.models.families.native_variant` when a model is loaded.
NATIVE_VARIANT = Variant(
    name=NATIVE,
    layout=NATIVE,
    allocation=NATIVE,
    description="the model family's own positions and frequency allocation, as its authors' code "
    "computes them (resolved on the model: Qwen2-VL mrope, Qwen2.5-VL mrope-timed, Qwen3-VL / "
    "Qwen3.5 / GLM-4.1V mrope-frames; the model's own allocation and sections)",
    source="the family's original get_rope_index (docs/footguns.md, docs/architecture.md)",
)


def preset_variant(name: str, **overrides: Any) -> Variant:
    """Preset ``name`` with layout parameters and/or ``sections`` overridden; ``native`` gives
    :data:`NATIVE_VARIANT` (it takes no parameters). :func:`vniahd.rope.get_variant` also takes
    spec strings, JSON files and variants.

    The name of an overridden variant records the overrides (``videorope:delta=0.5``).
    """
    if name == NATIVE:
        if overrides:
            raise VniahdError(
                f"variant 'native' takes no parameters (got {', '.join(sorted(overrides))}): it is "
                "the model's own layout and allocation; for other values name them, e.g. "
                "mrope-timed+mrope-blocks:tokens_per_second=4"
            )
        return NATIVE_VARIANT
    try:
        base = PRESETS[name]
    except KeyError:
        raise UnknownNameError("variant", name, [*PRESETS, NATIVE]) from None
    if not overrides:
        return base
    sections = overrides.pop("sections", base.sections)
    params = {**base.params, **overrides}
    built = make_variant(
        base.layout,
        base.allocation,
        sections=sections,
        description=base.description,
        source=base.source,
        **params,
    )
    changed = {k: v for k, v in built.params.items() if base.params.get(k) != v}
    if built.sections != base.sections:
        changed["sections"] = built.sections
    return Variant(
        name=_format_spec(name, changed),
        layout=built.layout,
        layout_params=built.layout_params,
        allocation=built.allocation,
        sections=built.sections,
        description=base.description + (f" ({_format_spec('', changed)[1:]})" if changed else ""),
        source=base.source,
        allocation_params=built.allocation_params,
    )


def published_presets() -> tuple[str, ...]:
    """Names of the presets the published designs after VideoRoPE registered, in order."""
    return tuple(name for name in PRESETS if name not in PAPER_PRESETS)


def register_preset(variant: Variant) -> Variant:
    """Add a published design's preset to :data:`PRESETS` (a name is registered once)."""
    if variant.name in PRESETS or variant.name == NATIVE:
        raise AssertionError(f"preset {variant.name!r} registered twice")
    PRESETS[variant.name] = variant
    return variant
