"""Multimodal RoPE designs published after VideoRoPE, one module each.

Importing this package registers each design's layout, allocation and preset(s) in
:data:`vniahd.rope.LAYOUTS`, :data:`vniahd.rope.ALLOCATIONS` and :data:`vniahd.rope.PRESETS`
(``vniahd.rope`` imports it, so they are always there). Every module says which official code
it follows, with file and line; docs/rope-math.md ("Published designs") tabulates where the
official code and the JJJYmmm/Multimodal-RoPEs reimplementation differ.
"""

from vniahd.rope.published import (  # noqa: F401  (imported for their registrations)
    circle_rope,
    hope,
    ilrope,
    mhrope,
    mmrope,
    mrope_i,
    multimodal_ropes,
    omnirope,
    v2pe,
    videorope_plus,
    vrope,
)

__all__ = [
    "circle_rope",
    "hope",
    "ilrope",
    "mhrope",
    "mmrope",
    "mrope_i",
    "multimodal_ropes",
    "omnirope",
    "v2pe",
    "videorope_plus",
    "vrope",
]
