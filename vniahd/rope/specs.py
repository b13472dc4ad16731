"""Variants from what users write: :func:`get_variant` (a name, a spec string, a JSON file or a
:class:`Variant`; syntax: :mod:`vniahd.variant_spec`), :func:`parse_variant`, :func:`load_variant_file`."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError
from vniahd.rope.presets import Variant, make_variant, preset_variant
from vniahd.variant_spec import parse_params


def get_variant(spec: str | Variant, **overrides: Any) -> Variant:
    """A RoPE variant from a preset name (``"videorope"``), a preset with ``overrides`` (layout
    parameters and/or ``sections``: ``get_variant("videorope", delta=0.5)``), a spec string
    (``"videorope:delta=1"``, ``"diagonal+lta:delta=0.5"``) or a JSON file; a :class:`Variant`
    without overrides is returned as is. ``native`` is :data:`vniahd.rope.NATIVE_VARIANT`."""
    if isinstance(spec, Variant) and not overrides:
        return spec
    if not isinstance(spec, str):
        raise VniahdError(
            f"a variant is a name, a spec string or a Variant, not {type(spec).__name__}; "
            "e.g. 'mrope' or 'videorope:delta=1'"
            + ("; overrides apply to a preset name" if isinstance(spec, Variant) else "")
        )
    return preset_variant(spec, **overrides) if overrides else parse_variant(spec)


def parse_variant(spec: str) -> Variant:
    """Turn a spec string (:mod:`vniahd.variant_spec`) or JSON file path into a variant."""
    spec = spec.strip()
    if spec.endswith(".json") or Path(spec).is_file():
        return load_variant_file(spec)
    head, _, tail = spec.partition(":")
    params = parse_params(tail)
    if "+" in head:
        layout, _, allocation = head.partition("+")
        return make_variant(layout.strip(), allocation.strip(), **params)
    return preset_variant(head, **params)


#: Keys a variant file may hold: its own, plus what :meth:`Variant.to_dict` writes (so a recorded
#: variant loads back); anything else is refused, as in a needle file.
VARIANT_FILE_KEYS = frozenset(
    {"preset", "params", "layout_params", "allocation_params", "sections", "name", "description", "source"}
    | {"layout", "allocation"}
    | {"default_sections_rule", "spec"}
)


def load_variant_file(path: str | os.PathLike[str]) -> Variant:
    """Load a variant from JSON: either ``{"preset": NAME, "params": {...}}`` or
    ``{"layout": L, "allocation": A, "params"|"layout_params": {...}, "sections": [t,h,w],
    "name": ..., "description": ..., "source": ...}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise VniahdError(
            f"variant file {str(path)!r} not found; pass a preset name, a spec "
            "like 'diagonal+lta:delta=0.5', or an existing JSON file"
        ) from None
    except json.JSONDecodeError as exc:
        raise VniahdError(f"variant file {str(path)!r} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise VniahdError(f"variant file {str(path)!r} must hold a JSON object")
    unknown = sorted(set(data) - VARIANT_FILE_KEYS)
    if unknown:
        raise VniahdError(
            f"variant file {str(path)!r}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
            f"{', '.join(sorted(VARIANT_FILE_KEYS))} (layout parameters go under 'params')"
        )
    params = {
        **(data.get("params") or data.get("layout_params") or {}),
        **(data.get("allocation_params") or {}),
    }
    if "sections" in data:
        params["sections"] = data["sections"]
    if "preset" in data:
        variant = preset_variant(data["preset"], **params)
        if data.get("name"):
            variant = dataclasses.replace(variant, name=data["name"])
        return _check_name(variant, path)
    if "layout" not in data or "allocation" not in data:
        raise VniahdError(f"variant file {str(path)!r} needs 'preset' or both 'layout' and 'allocation'")
    variant = make_variant(
        data["layout"],
        data["allocation"],
        name=data.get("name"),
        description=data.get("description"),
        source=data.get("source"),
        **params,
    )
    return _check_name(variant, path)


def _check_name(variant: Variant, path: Path) -> Variant:
    """Refuse a file variant named like a preset or spec (``mrope``, ``videorope:delta=1``) whose
    parameters are not that name's: results pool by variant name, so it would be counted as the
    real one."""
    name = variant.name.strip()
    if name.endswith(".json") or Path(name).is_file():
        return variant
    try:
        named = parse_variant(name)
    except VniahdError:
        return variant  # a name of its own: no preset or spec to collide with
    if named.spec != variant.spec:
        raise VniahdError(
            f"variant file {str(path)!r} names its variant {name!r}, but {name!r} is "
            f"{named.spec} and the file defines {variant.spec}; results are pooled by name, so "
            "give it a name of its own"
        )
    return variant
