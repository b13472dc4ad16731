"""What the evaluator needs from the other packages, as structural types (typing only).

The evaluator never imports a concrete backend or dataset class: anything with these members
works (a :class:`vniahd.models.base.Backend` subclass, a :class:`vniahd.dataset.Dataset`, or a
test double). These Protocols only document and type-check that contract; nothing checks them at
run time.

- :class:`BackendLike`: one loaded model (see :class:`vniahd.models.base.Backend`), with its
  :class:`TokenizerLike` tokenizer (see :class:`vniahd.models.tokenizer.TextTokenizer`);
- :class:`TextModelBackendLike`: a backend that also exposes its transformers text model and LM
  head (the FLOP model of :mod:`vniahd.evaluation.planning.flops`);
- :class:`DatasetLike`: a generated dataset directory (see :class:`vniahd.dataset.Dataset`).

Variants are :class:`vniahd.rope.Variant` itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    import pandas as pd

    from vniahd.dataset.reader import FrameRef
    from vniahd.models.base import BackendOptions
    from vniahd.needles.schema import Needle
    from vniahd.rope import RotaryConfig, Variant


class TokenizerLike(Protocol):
    """A text tokenizer (:class:`vniahd.models.tokenizer.TextTokenizer`): ``encode`` adds no
    special tokens, ``decode`` drops them; ``stop_ids`` end greedy generation."""

    @property
    def source(self) -> str: ...

    @property
    def stop_ids(self) -> list[int]: ...

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str: ...


class BackendLike(Protocol):
    """What the evaluator uses of a model backend (:class:`vniahd.models.base.Backend`)."""

    @property
    def spec(self) -> str: ...
    @property
    def seed(self) -> int | None: ...  # training seed of the weights, if seeded (result lines)

    @property
    def tokenizer(self) -> TokenizerLike: ...

    @property
    def rotary(self) -> RotaryConfig: ...

    @property
    def options(self) -> BackendOptions: ...

    @property
    def layout_params(self) -> Mapping[str, Any]: ...

    @property
    def can_crop_cache(self) -> bool: ...  # False: recurrent layers, no prefix sharing

    @property
    def cache_note(self) -> str: ...  # why the cache cannot be cropped (run.json)

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def hidden_size(self) -> int: ...

    # ---- frame encoder -------------------------------------------------------------------
    def visual_grid(self, frame_size: tuple[int, int]) -> tuple[int, int]: ...

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor: ...

    def encoder_fingerprint(self, frame_size: tuple[int, int]) -> str: ...

    # ---- identity ------------------------------------------------------------------------
    def fingerprint(self) -> str: ...

    def describe(self) -> dict[str, Any]: ...

    # ---- text path -----------------------------------------------------------------------
    def embed_text(self, ids: list[int]) -> torch.Tensor: ...

    def hidden_states(
        self,
        embeds: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any = None,
        segments: Sequence[int] | None = None,
        shared: int = 0,
    ) -> torch.Tensor: ...

    @property
    def can_pack(self) -> bool: ...  # hidden_states takes `segments` (packed suffixes)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor: ...

    def new_cache(self) -> Any: ...  # a transformers DynamicCache

    # ---- variants ------------------------------------------------------------------------
    def variant_record(self, variant: Variant) -> dict[str, Any]: ...

    def use_variant(self, variant: Variant) -> AbstractContextManager[dict[str, Any]]: ...


class TextModelBackendLike(BackendLike, Protocol):
    """A :class:`BackendLike` exposing its transformers text model (``config``: hidden size,
    layers, heads …) and LM head: what :mod:`vniahd.evaluation.planning.flops` counts."""

    @property
    def language_model(self) -> torch.nn.Module: ...

    @property
    def lm_head(self) -> torch.nn.Module: ...

    @property
    def vocab_size(self) -> int: ...


class DatasetLike(Protocol):
    """What the runner reads of a dataset (:class:`vniahd.dataset.Dataset`)."""

    @property
    def path(self) -> Path: ...

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def samples(self) -> pd.DataFrame: ...

    @property
    def needles(self) -> Mapping[str, Needle]: ...

    @property
    def frame_size(self) -> tuple[int, int]: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def haystack_key(self) -> str: ...

    @property
    def frames_per_group(self) -> int: ...

    def haystack_groups(self) -> np.ndarray: ...

    def frame_sequence(self, row: Mapping[str, Any]) -> list[FrameRef]: ...

    def haystack_frames(self) -> np.ndarray: ...

    def image(self, name: str) -> np.ndarray: ...
