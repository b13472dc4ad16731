"""Model families: one module per family, each holding one :class:`FamilyRecord`; this registry.

A family's record says everything that differs between the supported families — its
``model_type``, ``random:`` alias and config, transformers and backend classes, native positions
(``--variant native``) and prompt markup (``--prompt native``), rotary facts, patchify and cache
facts. Nothing outside this package branches on a family's name. To add one, see "How to add a
model family" in docs/architecture.md; :func:`register_family` adds one at run time (the tests do).

Lookups: :data:`FAMILIES` (``model_type`` → record), :func:`by_model_type`,
:func:`by_random_alias`, :func:`by_backend_family` (``backend.family``: a ``model_type`` or a
``random:`` model's spelling). Torch-free.
"""

from __future__ import annotations

from vniahd.models.families import (
    glm4v,
    glm4v_moe,
    qwen2_5_vl,
    qwen2_vl,
    qwen3_5,
    qwen3_5_moe,
    qwen3_vl,
    qwen3_vl_moe,
)
from vniahd.models.families._markup import Markup
from vniahd.models.families._native import family_of, native_variant
from vniahd.models.families._record import FamilyRecord
from vniahd.models.families._registry import (
    FAMILIES,
    by_backend_family,
    by_model_type,
    by_random_alias,
    random_aliases,
    register_family,
    unregister_family,
)

#: Kept for callers of the former one-table module: a family is its record.
Family = FamilyRecord

for _module in (qwen2_vl, qwen2_5_vl, qwen3_vl, qwen3_vl_moe, qwen3_5, qwen3_5_moe, glm4v, glm4v_moe):
    register_family(_module.RECORD)

__all__ = [
    "FAMILIES",
    "Family",
    "FamilyRecord",
    "Markup",
    "by_backend_family",
    "by_model_type",
    "by_random_alias",
    "family_of",
    "native_variant",
    "random_aliases",
    "register_family",
    "unregister_family",
    "glm4v",
    "glm4v_moe",
    "qwen2_5_vl",
    "qwen2_vl",
    "qwen3_5",
    "qwen3_5_moe",
    "qwen3_vl",
    "qwen3_vl_moe",
]
