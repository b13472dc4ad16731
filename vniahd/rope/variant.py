"""A RoPE variant: a position layout + a frequency allocation + their parameters.

:class:`Variant` is what every caller holds; :func:`make_variant` builds one from any registered
layout and allocation (:mod:`vniahd.rope.layouts`, :mod:`vniahd.rope.allocations`). Named presets
are in :mod:`vniahd.rope.presets`; spec strings and JSON files are read by :mod:`vniahd.rope.specs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vniahd.errors import VniahdError
from vniahd.rope.allocations import (
    ALLOCATIONS,
    MODEL_SECTION_ALLOCATIONS,
    allocation_axes,
    allocation_plan,
    check_allocation,
    resolve_sections,
)
from vniahd.rope.components import PairPlan, jsonable
from vniahd.rope.layouts import get_layout
from vniahd.rope.segments import Segment

#: The variant name that stands for each model family's own positions and allocation.
NATIVE = "native"


@dataclass(frozen=True, eq=True)
class Variant:
    """A RoPE variant: layout + layout parameters + allocation (+ its parameters, + fixed sections
    or ``None`` for the allocation's default for the model's pair count)."""

    name: str
    layout: str
    layout_params: Mapping[str, Any] = field(default_factory=dict)
    allocation: str = "uniform"
    sections: tuple[int, int, int] | None = None
    description: str = ""
    source: str = ""
    allocation_params: Mapping[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # the params are dicts, so hash their items
        return hash(
            (
                self.name,
                self.layout,
                tuple(sorted(self.layout_params.items())),
                self.allocation,
                self.sections,
                tuple(sorted(self.allocation_params.items())),
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

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The names of the position streams the layout fills (``('t', 'h', 'w')`` mostly)."""
        self._check_concrete()
        return get_layout(self.layout).streams

    @property
    def per_head(self) -> bool:
        """Whether the allocation gives each KV head its own streams (it then needs ``kv_heads``)."""
        return not self.is_native and ALLOCATIONS[self.allocation].per_head

    def positions(self, segments: Sequence[Segment]) -> torch.Tensor:
        """Position ids [K, S] (float64) of ``segments`` under this variant's layout."""
        self._check_concrete()
        return get_layout(self.layout)(segments, **dict(self.layout_params))

    def sections_for(
        self, num_pairs: int, model_sections: tuple[int, int, int] | None = None
    ) -> tuple[int, int, int] | None:
        """The (t, h, w) sections used with ``num_pairs`` pairs (``None`` when the allocation
        uses none); with ``model_sections``, block allocations keep the model's own
        (:mod:`vniahd.rope.model`)."""
        return resolve_sections(self.allocation, self.sections, num_pairs, model_sections)

    def pair_plan(
        self, num_pairs: int, model_sections: tuple[int, int, int] | None = None, kv_heads: int | None = None
    ) -> PairPlan:
        """Stream and frequency multiplier of each of ``num_pairs`` rotary pairs (per KV head for
        a per-head allocation). For a concrete model use :func:`vniahd.rope.variant_plan`."""
        self._check_concrete()
        return allocation_plan(
            self.allocation,
            num_pairs,
            self.sections_for(num_pairs, model_sections),
            kv_heads,
            **dict(self.allocation_params),
        )

    def axes(self, num_pairs: int, model_sections: tuple[int, int, int] | None = None) -> torch.Tensor:
        """Stream index of each of ``num_pairs`` rotary pairs (0=t, 1=h, 2=w for the classic
        layouts; :data:`~vniahd.rope.components.NOPE` for a NoPE pair): long [P]. Frequency
        multipliers and per-head plans: :meth:`pair_plan`."""
        self._check_concrete()
        return allocation_axes(
            self.allocation,
            num_pairs,
            self.sections_for(num_pairs, model_sections),
            **dict(self.allocation_params),
        )

    @property
    def params(self) -> dict[str, Any]:
        """Layout and allocation parameters together (their names never overlap)."""
        return {**self.layout_params, **self.allocation_params}

    @property
    def spec(self) -> str:
        """A spec string that :func:`parse_variant` turns back into an equal variant."""
        if self.is_native:
            return NATIVE
        params = self.params
        if self.sections is not None:
            params["sections"] = self.sections
        return _format_spec(f"{self.layout}+{self.allocation}", params)

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to record and rebuild the variant (JSON-serialisable)."""
        out = {
            "name": self.name,
            "layout": self.layout,
            "layout_params": {k: jsonable(v) for k, v in self.layout_params.items()},
            "allocation": self.allocation,
            "sections": list(self.sections) if self.sections is not None else None,
            "default_sections_rule": _default_rule(self),
            "description": self.description,
            "source": self.source,
            "spec": self.spec,
        }
        if self.allocation_params:  # only when there are any: older records (and keys) stay as they were
            out["allocation_params"] = {k: jsonable(v) for k, v in self.allocation_params.items()}
        return out

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
                **dict(data.get("allocation_params") or {}),
            )
        except KeyError as exc:
            raise VniahdError(
                f"variant record lacks {exc.args[0]!r}; it needs at least 'layout' and 'allocation'"
            ) from None


def _default_rule(variant: Variant) -> str | None:
    """How the sections are chosen when the variant fixes none (see :mod:`vniahd.rope.model`)."""
    if variant.is_native:
        return "the model's own mrope_section"
    allocation = ALLOCATIONS[variant.allocation]
    if variant.sections is not None or not allocation.uses_sections:
        return None
    if allocation.section_rule == "interleaved":
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
    """A custom variant from any layout, any allocation and their parameters (each key goes to
    the part that declares it).

    ``sections`` (t, h, w) fixes the sections; ``None`` uses the allocation's default for the
    model's pair count. The default name is the variant's spec string.
    """
    lay = get_layout(layout)
    alloc = ALLOCATIONS[check_allocation(allocation)]
    layout_keys = {k: v for k, v in params.items() if k in lay.defaults}
    alloc_keys = {k: v for k, v in params.items() if k not in lay.defaults}
    unknown = sorted(k for k in alloc_keys if k not in alloc.defaults)
    if unknown:
        valid = sorted({*lay.defaults, *alloc.defaults, "sections"})
        raise VniahdError(
            f"variant {layout}+{allocation} has no parameter {', '.join(unknown)}; its parameters: "
            f"{', '.join(valid)}"
        )
    resolved = lay.resolve_params(**layout_keys)
    resolved_alloc = alloc.resolve_params(**alloc_keys)
    # a cycling allocation reads as many streams as its parameter says
    need = int(resolved_alloc.get("streams", alloc.streams))
    if need > len(lay.streams):
        raise VniahdError(
            f"allocation {allocation!r} reads {need} position streams but layout {layout!r} "
            f"fills {len(lay.streams)} ({', '.join(lay.streams)}); pick a layout with "
            f"{need} streams" + (f" or streams<={len(lay.streams)}" if "streams" in resolved_alloc else "")
        )
    secs = _normalise_sections(sections)
    if not alloc.uses_sections and secs is not None:
        raise VniahdError(
            f"the {allocation} allocation takes no sections; drop 'sections' or pick another allocation"
        )
    overrides = {k: v for k, v in resolved.items() if lay.defaults.get(k) != v}
    overrides |= {k: v for k, v in resolved_alloc.items() if alloc.defaults.get(k) != v}
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
        allocation_params=resolved_alloc,
    )
