"""RoPE variants = a position layout + a frequency allocation + parameters (docs/rope-math.md).

- :data:`PRESETS`: the named variants users pass as ``--variant`` (each cites its source).
- :func:`preset_variant`: a preset, optionally with overridden parameters.
- :func:`make_variant`: any layout × any allocation × parameters.

Spec strings and JSON variant files (``parse_variant``) are read by :mod:`vniahd.rope.specs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.rope.allocations import (
    MODEL_SECTION_ALLOCATIONS,
    allocation_axes,
    check_allocation,
    resolve_sections,
)
from vniahd.rope.layouts import get_layout
from vniahd.rope.segments import Segment


@dataclass(frozen=True, eq=True)
class Variant:
    """A RoPE variant: layout + layout parameters + allocation (+ fixed sections or ``None`` for
    the allocation's default for the model's pair count)."""

    name: str
    layout: str
    layout_params: Mapping[str, Any] = field(default_factory=dict)
    allocation: str = "uniform"
    sections: tuple[int, int, int] | None = None
    description: str = ""
    source: str = ""

    def __hash__(self) -> int:  # layout_params is a dict, so hash its items
        return hash(
            (
                self.name,
                self.layout,
                tuple(sorted(self.layout_params.items())),
                self.allocation,
                self.sections,
            )
        )

    @property
    def is_native(self) -> bool:
        """Whether this is the unresolved ``native`` variant (:data:`NATIVE_VARIANT`): a stand-in
        for a model family's own positions and allocation, made concrete on a model."""
        return self.layout == NATIVE

    def _check_concrete(self) -> None:
        if self.is_native:
            raise VniahdError(
                "variant 'native' is each model family's own positions and allocation, so it has "
                "positions only on a model (vniahd eval / export-inputs --model …); to look at "
                "them here name the layout, e.g. --variant mrope-frames+interleaved"
            )

    def positions(self, segments: Sequence[Segment]) -> torch.Tensor:
        """Position ids [3, S] (float64) of ``segments`` under this variant's layout."""
        self._check_concrete()
        return get_layout(self.layout)(segments, **dict(self.layout_params))

    def sections_for(
        self, num_pairs: int, model_sections: tuple[int, int, int] | None = None
    ) -> tuple[int, int, int] | None:
        """The (t, h, w) sections used with ``num_pairs`` pairs (``None`` for uniform); with
        ``model_sections``, block allocations keep the model's own (:mod:`vniahd.rope.model`)."""
        return resolve_sections(self.allocation, self.sections, num_pairs, model_sections)

    def axes(self, num_pairs: int, model_sections: tuple[int, int, int] | None = None) -> torch.Tensor:
        """Stream index (0=t, 1=h, 2=w) of each of ``num_pairs`` rotary pairs: long [P]. For a
        concrete model use :func:`vniahd.rope.variant_axes`, which passes its sections."""
        self._check_concrete()
        return allocation_axes(self.allocation, num_pairs, self.sections_for(num_pairs, model_sections))

    @property
    def spec(self) -> str:
        """A spec string that :func:`parse_variant` turns back into an equal variant."""
        if self.is_native:
            return NATIVE
        params = dict(self.layout_params)
        if self.sections is not None:
            params["sections"] = self.sections
        return _format_spec(f"{self.layout}+{self.allocation}", params)

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to record and rebuild the variant (JSON-serialisable)."""
        return {
            "name": self.name,
            "layout": self.layout,
            "layout_params": dict(self.layout_params),
            "allocation": self.allocation,
            "sections": list(self.sections) if self.sections is not None else None,
            "default_sections_rule": _default_rule(self),
            "description": self.description,
            "source": self.source,
            "spec": self.spec,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Variant:
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""
        try:
            return make_variant(
                data["layout"],
                data["allocation"],
                name=data.get("name"),
                sections=data.get("sections"),
                description=data.get("description"),
                source=data.get("source"),
                **dict(data.get("layout_params") or {}),
            )
        except KeyError as exc:
            raise VniahdError(
                f"variant record lacks {exc.args[0]!r}; it needs at least 'layout' and 'allocation'"
            ) from None


def _default_rule(variant: Variant) -> str | None:
    """How the sections are chosen when the variant fixes none (see :mod:`vniahd.rope.model`)."""
    if variant.is_native:
        return "the model's own mrope_section"
    if variant.sections is not None or variant.allocation == "uniform":
        return None
    if variant.allocation == "interleaved":
        return "h=w=(5P)//16, t=P-h-w (Qwen3-VL (24,20,20) at P=64)"
    if variant.allocation in MODEL_SECTION_ALLOCATIONS:
        return "the model's own mrope_section; without a model t=P//4, h=(P-t)//2, w=P-t-h"
    return "t=P//4, h=(P-t)//2, w=P-t-h"


def _fmt_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "/".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _format_spec(head: str, params: Mapping[str, Any]) -> str:
    if not params:
        return head
    return head + ":" + ",".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def _normalise_sections(sections: Any) -> tuple[int, int, int] | None:
    if sections is None:
        return None
    if isinstance(sections, str):
        sections = sections.replace("/", ",").split(",")
    try:
        parts = tuple(int(str(s).strip()) for s in sections)
    except (TypeError, ValueError):
        parts = ()
    if len(parts) != 3 or any(p < 0 for p in parts):
        raise VniahdError(
            f"sections must be three non-negative integers t,h,w (e.g. 16,24,24), got {sections!r}"
        )
    return parts


def make_variant(
    layout: str,
    allocation: str,
    *,
    name: str | None = None,
    sections: Any = None,
    description: str | None = None,
    source: str | None = None,
    **params: Any,
) -> Variant:
    """A custom variant from any layout, any allocation and the layout's parameters.

    ``sections`` (t, h, w) fixes the sections; ``None`` uses the allocation's default for the
    model's pair count. The default name is the variant's spec string.
    """
    lay = get_layout(layout)
    check_allocation(allocation)
    resolved = lay.resolve_params(**params)
    secs = _normalise_sections(sections)
    if allocation == "uniform" and secs is not None:
        raise VniahdError(
            "the uniform allocation takes no sections; drop 'sections' or pick another allocation"
        )
    overrides = {k: v for k, v in resolved.items() if lay.defaults.get(k) != v}
    if secs is not None:
        overrides["sections"] = secs
    return Variant(
        name=name or _format_spec(f"{layout}+{allocation}", overrides),
        layout=layout,
        layout_params=resolved,
        allocation=allocation,
        sections=secs,
        description=description
        if description is not None
        else f"custom: {layout} layout with {allocation} allocation",
        source=source if source is not None else "user-defined (vniahd.rope.make_variant)",
    )


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


#: The variant name that stands for each model family's own positions and allocation.
NATIVE = "native"

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
    params = {**base.layout_params, **overrides}
    built = make_variant(
        base.layout,
        base.allocation,
        sections=sections,
        description=base.description,
        source=base.source,
        **params,
    )
    changed = {k: v for k, v in built.layout_params.items() if base.layout_params.get(k) != v}
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
    )
