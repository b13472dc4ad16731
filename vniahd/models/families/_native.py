"""``--variant native`` and a backend's family: :func:`family_of`, :func:`native_variant` (torch-free).

**Native positions** are what ``--variant native`` becomes on a model: the family's own position
layout (its record's ``layout``, as its authors' ``get_rope_index`` computes it), with the model's
own frequency allocation and ``mrope_section``; a timed layout (``mrope-timed``) takes
``tokens_per_second`` from the model's vision config and ``second_per_grid_t`` = the seconds one
temporal group spans in the dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vniahd.errors import VniahdError
from vniahd.models.families._record import FamilyRecord
from vniahd.models.families._registry import FAMILIES, by_backend_family

if TYPE_CHECKING:
    from vniahd.rope import Variant


def family_of(backend: Any) -> FamilyRecord:
    """The record of a loaded backend's family, or a :class:`VniahdError` naming what to do."""
    name = getattr(backend, "family", None)
    record = by_backend_family(name) if isinstance(name, str) else None
    if record is None:
        raise VniahdError(
            f"{backend.spec} has no native positions or prompt markup in vniahd (native covers "
            f"{', '.join(f.name for f in FAMILIES.values())}); the tiny model is trained per "
            "variant, so name a variant (e.g. mrope) and use --prompt reference"
        )
    return record


def native_variant(backend: Any, fps: float | None, frames_per_group: int = 1) -> Variant:
    """``--variant native`` on ``backend``: its family's layout with the model's own allocation and
    sections; a timed layout takes ``tokens_per_second`` from the model and ``second_per_grid_t``
    = ``frames_per_group / fps`` (what one temporal group spans; the processor's
    ``temporal_patch_size / fps``)."""
    from vniahd.rope import make_variant
    from vniahd.rope.layouts import timed_params
    from vniahd.rope.presets import NATIVE

    fam = family_of(backend)
    rot = backend.rotary
    params = timed_params(fam.layout, backend.layout_params, fps, frames_per_group)
    return make_variant(
        fam.layout,
        rot.native_allocation,
        name=NATIVE,
        sections=tuple(rot.sections),
        description=f"{fam.name}'s own positions ({fam.layout}) and frequency allocation "
        f"({rot.native_allocation}, sections {'/'.join(map(str, rot.sections))})",
        source=fam.source,
        **params,
    )
