"""All RoPE math of vniahd: position layouts, frequency allocations, presets, rotation.

A RoPE *variant* (:mod:`.variant`) is a position layout (how K named position streams are filled,
t/h/w for most, :mod:`.layouts`) plus a frequency allocation (which stream each rotary pair reads
and at what multiple of its frequency, 0 = NoPE, optionally per KV head: a :class:`PairPlan`,
:mod:`.allocations`) plus parameters; :mod:`.presets` names the VideoRoPE paper's and
:mod:`.published` adds one module per design published since (docs/rope-math.md). Pure torch;
the transformers integration lives in :mod:`.hf` (imported on demand).

Typical use::

    from vniahd.rope import Text, Video, get_variant, inv_freq, rope_cos_sin
    v = get_variant("videorope")
    pos = v.positions([Text(2), Video(3, 2, 3), Text(2)])      # float64 [3, S]
    cos, sin = rope_cos_sin(pos[:, None], inv_freq(128, 1e6), v.axes(64))
"""

from vniahd.rope import published  # noqa: F401  registers the designs after VideoRoPE
from vniahd.rope.allocations import (
    ALLOCATIONS,
    AXIS_NAMES,
    allocation_axes,
    allocation_plan,
    axis_names,
    check_sections,
    default_sections,
)
from vniahd.rope.angles import rotary_angles
from vniahd.rope.components import NOPE, Allocation, Layout, PairPlan
from vniahd.rope.layouts import LAYOUTS, get_layout, layout_positions
from vniahd.rope.model import RotaryConfig, applied_allocation, effective_sections, variant_axes, variant_plan
from vniahd.rope.presets import (
    NATIVE_VARIANT,
    PRESETS,
    Variant,
    make_variant,
    preset_variant,
)
from vniahd.rope.rotation import (
    apply_rotary,
    inv_freq,
    rope_cos_sin,
    rotate_half,
    temporal_period,
    wavelengths,
)
from vniahd.rope.segments import Image, Segment, Text, Video, num_tokens, simple_sequence
from vniahd.rope.specs import get_variant, load_variant_file, parse_variant
from vniahd.variant_spec import SPEC_HELP

__all__ = [
    "ALLOCATIONS",
    "NOPE",
    "Allocation",
    "PairPlan",
    "allocation_plan",
    "AXIS_NAMES",
    "LAYOUTS",
    "NATIVE_VARIANT",
    "PRESETS",
    "SPEC_HELP",
    "Image",
    "Layout",
    "RotaryConfig",
    "Segment",
    "Text",
    "Variant",
    "Video",
    "allocation_axes",
    "applied_allocation",
    "apply_rotary",
    "axis_names",
    "check_sections",
    "default_sections",
    "effective_sections",
    "get_layout",
    "get_variant",
    "preset_variant",
    "inv_freq",
    "layout_positions",
    "load_variant_file",
    "make_variant",
    "num_tokens",
    "parse_variant",
    "rope_cos_sin",
    "rotary_angles",
    "rotate_half",
    "simple_sequence",
    "temporal_period",
    "variant_axes",
    "variant_plan",
    "wavelengths",
]
