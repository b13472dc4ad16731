"""The ``--variant`` spec syntax, torch-free so that ``vniahd --help`` stays fast.

    NAME                        a preset, e.g. videorope
    NAME:key=value,...          a preset with overrides, e.g. videorope:delta=0.5,text_after=paper
    LAYOUT+ALLOCATION[:k=v,...] a custom variant, e.g. diagonal+lta:delta=0.5
    path/to/variant.json        a JSON file (see :func:`vniahd.rope.load_variant_file`)

Keys are the layout's parameters (``delta``, ``text_after`` for diagonal; ``second_per_grid_t``,
``tokens_per_second`` for mrope-timed) and ``sections`` as ``t/h/w`` (or ``t,h,w`` at the end).
:func:`vniahd.rope.parse_variant` turns a spec into a variant.
"""

from __future__ import annotations

from typing import Any

from vniahd.errors import VniahdError

#: The help text of every ``--variant`` option. It names the layouts, allocations and defaults
#: literally (importing the registries would import torch); tests/test_rope_cli.py checks it
#: against :data:`vniahd.rope.LAYOUTS` and :data:`vniahd.rope.ALLOCATIONS`.
SPEC_HELP = (
    "a preset name (see 'vniahd variants'); a preset with overrides 'NAME:key=value,...' "
    "(e.g. 'videorope:delta=0.5,text_after=paper'); a custom 'LAYOUT+ALLOCATION[:key=value,...]' "
    "(e.g. 'diagonal+lta:delta=0.5'; layouts: vanilla, tad, mrope, mrope-timed, mrope-frames, diagonal, "
    "circle, spatial-reset, mrope-scaled, v2pe, vrope; allocations: uniform, mrope-blocks, lta, "
    "lta-sequential, interleaved, hybrid, per-head, meta-blocks, lta-mmr, lta-yarn, cyclic); or a JSON "
    "file path. Keys: diagonal: delta (default 2), text_after=code|paper|max (default code); "
    "mrope-timed: second_per_grid_t (default 1.0), tokens_per_second (default 2); spatial-reset, "
    "mrope-scaled, circle: stride (default 1); mrope-scaled: scale=t/h/w (default 1/1/1); circle: "
    "radius (default 10), alpha (default 0.5); v2pe: visual_stride (default 16), block=frame|video; "
    "lta-yarn: factor (default 4), original_length (default 32768); per-head: heads=t/h/w (KV heads "
    "per stream, default auto); lta-mmr: temporal=rotate|nope; cyclic: streams (default 4); an "
    "allocation with t/h/w sections: sections=t/h/w."
)


def parse_params(text: str) -> dict[str, Any]:
    """``'delta=0.5,text_after=paper,sections=16,24,24'`` -> dict (values as strings)."""
    params: dict[str, Any] = {}
    last = None
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if "=" not in token:
            if last == "sections":  # 'sections=16,24,24': trailing numbers belong to it
                params["sections"] += "," + token
                continue
            raise VniahdError(f"bad variant parameter {token!r}; write key=value, e.g. delta=0.5")
        key, value = (s.strip() for s in token.split("=", 1))
        key = key.replace("-", "_")
        if key in params:
            raise VniahdError(
                f"variant parameter {key!r} is given twice ({key}={params[key]}, {key}={value}); keep one"
            )
        params[key] = value
        last = key
    return params
