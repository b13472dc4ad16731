""":class:`FamilyRecord`: everything vniahd knows about one model family, in one value.

The loaders (``hf:`` in :mod:`vniahd.models.hf_qwen`, ``random:`` in :mod:`vniahd.models.random_qwen`),
``--variant native`` / ``--prompt native`` (:mod:`vniahd.models.families._native`) and the rotary
check read these fields; none of them names a family. Torch-free: the transformers class and the
backend class are imported only when a model is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vniahd.errors import VniahdError
from vniahd.models.families._markup import Markup

#: The adapter every Qwen2-VL-structured family uses unless its record names another.
DEFAULT_BACKEND = "vniahd.models.qwen_vl:QwenVLBackend"


@dataclass(frozen=True)
class FamilyRecord:
    """One model family.

    Identity: ``model_type`` (the checkpoints' ``config.json`` value; ``model_types`` adds other
    spellings that load the same way), ``name`` (display), ``random_alias`` (``random:<alias>``).
    Loading: ``transformers_class`` (a name in ``transformers``), ``backend`` (``module:Class``),
    ``random_config(p, bos, eos)`` (the transformers config of a ``random:`` model from resolved
    parameters ``p``, see :func:`vniahd.models.random_qwen.resolve_params`), ``random_defaults``
    (parameter defaults of its ``random:`` model), ``random_7b_sections`` (``size=7b``'s
    16,24,24 applies), ``random_patch`` (:class:`~vniahd.models.patchify.PatchifyConfig` fields of a
    ``random:`` model beyond patch/temporal/merge sizes), ``pixel_budget_per_frame`` (its processor
    budgets min/max pixels over a whole temporal group: ``hf:`` divides them by the temporal patch
    size), ``vision_layout_params`` (vision-config attributes a timed layout needs, with defaults).
    Rotary facts, checked against the loaded model's rotary module
    (:meth:`check_rotary`): ``native_allocation`` (``mrope-blocks`` / ``interleaved``),
    ``pair_layout`` (``neox`` / ``adjacent``), ``rotary_fraction`` (partial rotary: the share of
    each head that rotates). Native positions: ``layout`` and its ``source``; prompt: ``markup``.
    Cache: ``can_crop_cache`` / ``cache_note`` (recurrent layers: no prefix sharing).
    """

    model_type: str
    name: str
    layout: str
    source: str
    markup: Markup
    transformers_class: str
    random_alias: str
    random_config: Callable[[dict, int | None, int | None], Any]
    backend: str = DEFAULT_BACKEND
    model_types: tuple[str, ...] = ()
    native_allocation: str = "mrope-blocks"
    pair_layout: str = "neox"
    rotary_fraction: float = 1.0
    random_defaults: Mapping[str, int] = field(default_factory=dict)
    random_7b_sections: bool = False
    random_patch: Mapping[str, Any] = field(default_factory=dict)
    pixel_budget_per_frame: bool = False
    vision_layout_params: Mapping[str, int] = field(default_factory=dict)
    can_crop_cache: bool = True
    cache_note: str = ""

    # ---- identity --------------------------------------------------------------------------
    @property
    def random_family(self) -> str:
        """``backend.family`` of its ``random:`` model (the alias with ``-`` and ``.`` as ``_``)."""
        return self.random_alias.replace("-", "_").replace(".", "_")

    @property
    def all_model_types(self) -> tuple[str, ...]:
        return (self.model_type, *self.model_types)

    @property
    def backend_families(self) -> tuple[str, ...]:
        """Every ``backend.family`` value that means this family."""
        return (*self.all_model_types, self.random_family)

    # ---- loading (lazy imports) ------------------------------------------------------------
    def model_class(self) -> Any:
        import transformers

        return getattr(transformers, self.transformers_class)

    def backend_class(self) -> Any:
        module, _, name = self.backend.partition(":")
        return getattr(importlib.import_module(module), name)

    def rotary_divisor(self) -> int:
        """1 / ``rotary_fraction`` (2: half of each head rotates, 4: a quarter)."""
        return round(1 / self.rotary_fraction)

    def build_backend(self, **kwargs: Any) -> Any:
        """The backend for a loaded model: :attr:`backend` constructed with ``kwargs`` (and
        ``family``), its cache facts set, its rotary module checked against this record."""
        backend = self.backend_class()(**kwargs)
        if not self.can_crop_cache:
            backend.can_crop_cache = False
            backend.cache_note = self.cache_note
        self.check_rotary(backend.rotary)
        return backend

    def check_rotary(self, rotary: Any) -> None:
        """Fail if the model's rotary module (as probed by :func:`vniahd.rope.hf.rotary_config`)
        disagrees with this record's allocation, pair layout or partial rotary share."""
        rotated = (rotary.rotary_dim or rotary.head_dim) / rotary.head_dim
        want = (self.native_allocation, self.pair_layout, self.rotary_fraction)
        got = (rotary.native_allocation, rotary.pair_layout, rotated)
        if want != got:
            raise VniahdError(
                f"the {self.name} record says (allocation, pair layout, rotary share) = {want}, but the "
                f"model's rotary module does {got}; fix the record in vniahd/models/families/"
            )
