"""What the evaluator needs from the other packages, as structural types.

The evaluator never imports a concrete backend or dataset class: anything with these members
works (a :class:`vniahd.models.base.Backend` subclass, a :class:`vniahd.dataset.Dataset`, or a
test double). The backend contract is split into small Protocols, each one side of a model, and a
module takes the narrowest it uses:

- :class:`ModelIdentity`: spec, seed, family, options, fingerprint, ``describe()`` (run.json);
- :class:`FrameEncoder`: frames → embedding rows (the embedding cache);
- :class:`TextModel`: rows → hidden states → logits over a KV cache, with its
  :class:`TokenizerLike` tokenizer (scoring, chunked prefill, prefix sharing);
- :class:`VariantApplication`: the rotary config and ``use_variant`` / ``variant_record``;
- :class:`BackendLike`: all four (the runner);
- :class:`TextModelBackendLike`: a :class:`TextModel` that also exposes its transformers text
  model and LM head (the FLOP model of :mod:`vniahd.evaluation.planning.flops`);
- :class:`DatasetLike`: a generated dataset directory (see :class:`vniahd.dataset.Dataset`).

The backend Protocols are ``runtime_checkable`` (tests check the shipped backends against them);
the evaluator itself never probes a backend for members. Variants are
:class:`vniahd.rope.Variant` itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

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


@runtime_checkable
class ModelIdentity(Protocol):
    """What names a loaded model in results and run.json."""

    @property
    def spec(self) -> str: ...

    @property
    def seed(self) -> int | None: ...  # training seed of the weights, if seeded (result lines)

    @property
    def family(self) -> str: ...  # vniahd.models.families key, "" for none (native, markup)

    @property
    def options(self) -> BackendOptions: ...  # device, dtype, frame mode as asked

    #: whether loading or applying a variant may show progress bars (set by the API)
    progress: bool

    def fingerprint(self) -> str: ...

    def describe(self) -> dict[str, Any]: ...


@runtime_checkable
class RowSpace(Protocol):
    """Where and how wide the evaluator's embedding rows are (:mod:`vniahd.models.rows`)."""

    @property
    def row_width(self) -> int: ...  # columns of one embedding row (≥ hidden_size)

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...


@runtime_checkable
class FrameEncoder(RowSpace, Protocol):
    """uint8 frames → visual embedding rows (the embedding cache's side)."""

    def visual_grid(self, frame_size: tuple[int, int]) -> tuple[int, int]: ...

    def tokens_per_frame(self, frame_size: tuple[int, int]) -> int: ...

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor: ...

    def encoder_fingerprint(self, frame_size: tuple[int, int]) -> str: ...


@runtime_checkable
class TextModel(RowSpace, Protocol):
    """Embedding rows → hidden states → logits, over a KV cache (the scorer's side)."""

    @property
    def tokenizer(self) -> TokenizerLike: ...

    @property
    def hidden_size(self) -> int: ...  # the model's width d

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

    @property
    def can_crop_cache(self) -> bool: ...  # False: recurrent layers, no prefix sharing

    @property
    def cache_note(self) -> str: ...  # why the cache cannot be cropped (run.json)


@runtime_checkable
class VariantApplication(Protocol):
    """Applying a RoPE variant to the model: the only way the evaluator applies one."""

    @property
    def rotary(self) -> RotaryConfig: ...

    @property
    def layout_params(self) -> Mapping[str, Any]: ...  # e.g. tokens_per_second (timed layouts)

    def variant_record(self, variant: Variant) -> dict[str, Any]: ...

    def use_variant(self, variant: Variant) -> AbstractContextManager[dict[str, Any]]: ...


@runtime_checkable
class BackendLike(ModelIdentity, FrameEncoder, TextModel, VariantApplication, Protocol):
    """Everything the evaluator uses of a model backend (:class:`vniahd.models.base.Backend`);
    a module that needs one side only takes that side's Protocol."""


class TextModelBackendLike(TextModel, Protocol):
    """A :class:`TextModel` exposing its transformers text model (``config``: hidden size,
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

    def sample(self, sample_id: str) -> Any: ...

    def haystack_frames(self) -> np.ndarray: ...

    def image(self, name: str) -> np.ndarray: ...
