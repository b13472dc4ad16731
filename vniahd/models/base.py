"""The model-backend interface.

A backend is everything the evaluator needs from a video-language model, split in two halves so
that different frame encoders can share one text path (the ``tiny`` backend swaps the encoder and
keeps the text side):

- **frame encoder**: uint8 frames → visual token embeddings, one temporal group per benchmark
  frame (:meth:`Backend.encode_frames`), with a fingerprint of everything that changes its output
  (:meth:`Backend.encoder_fingerprint`; the embedding cache is keyed by it);
- **text path**: a transformers Qwen2-VL-style text model (``language_model``: ``embed_tokens``,
  a ``rotary_emb`` module, ``forward(inputs_embeds, position_ids[3,B,S], cache, use_cache)``), an
  LM head applied only to the rows the scorer asks for, the tokenizer, and the rotary config
  (head dim, theta, t/h/w sections) that the RoPE variants need.

Specs name backends (``hf:PATH``, ``random:qwen2-vl``, ``tiny``); :mod:`vniahd.models.registry`
turns a spec into a backend.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from vniahd.errors import VniahdError
from vniahd.rope.model import RotaryConfig

if TYPE_CHECKING:
    from transformers import PreTrainedConfig

    from vniahd.rope import Variant

FRAME_MODES = ("video", "image")


@dataclass(frozen=True)
class BackendOptions:
    """Run-time choices common to every backend."""

    device: str = "cpu"
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    frame_mode: str = "video"
    #: ``--device-map`` as the user wrote it (hf: only; :mod:`vniahd.models.device_map`). The
    #: backend then sets ``device`` to where its inputs go (the device of ``embed_tokens``).
    device_map: str | None = None

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def torch_dtype(self) -> torch.dtype:
        return resolve_dtype(self.dtype, self.torch_device())


def resolve_device(device: str) -> torch.device:
    """``cpu`` / ``cuda`` / ``cuda:N``; CUDA without a GPU is a user error, not a crash."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise VniahdError(
                f"--device {device} asked for, but no CUDA GPU is visible to torch here; "
                "use --device cpu (or run on a machine with a GPU and a CUDA torch build)"
            )
        return torch.device(device)
    if device != "cpu":
        raise VniahdError(f"unknown device {device!r}; use cpu or cuda")
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` = bfloat16 on a CUDA device that supports it, else float32."""
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in table:
        raise VniahdError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return table[dtype]


class Backend(ABC):
    """One loaded model. Subclasses set the attributes below in ``__init__``.

    Attributes:
        spec: the spec string the user passed (recorded in every result line).
        tokenizer: a :class:`vniahd.models.tokenizer.TextTokenizer`.
        language_model: the transformers text model (Qwen2VLTextModel or compatible).
        lm_head: ``nn.Linear(hidden, vocab)``; the scorer applies it to selected rows only.
        rotary: :class:`RotaryConfig`.
        options: :class:`BackendOptions` (device, dtype, frame mode).
        layout_params: extra parameters a timed layout needs (e.g. ``tokens_per_second``).
    """

    #: Whether a KV cache of this model can be cropped back to a shorter prefix. Recurrent
    #: (linear-attention) layers cannot: such a model runs without prefix sharing, and a
    #: multi-token answer option is scored on a copy of the cache instead of cropping it back.
    can_crop_cache: bool = True
    cache_note: str = ""
    #: The training seed of the weights when they come from a seeded recipe (the tiny model,
    #: random checkpoints); recorded in every result line so across-seed reports need no parsing.
    seed: int | None = None
    #: The model family's name (:mod:`vniahd.models.families`: native layout, prompt markup);
    #: "" for a model vniahd knows no family of (the tiny model).
    family: str = ""
    #: Whether loading or applying a variant may show progress bars (the tiny model's on-demand
    #: training); the API sets it from the evaluation's ``progress`` setting.
    progress: bool = True
    #: Whether the backend wraps a stock transformers ``…ForConditionalGeneration`` whose own
    #: forward can replay exported inputs (``self.model``, ``self.patch``; ``vniahd export-inputs``).
    stock_forward: bool = False
    spec: str
    tokenizer: Any
    language_model: torch.nn.Module
    lm_head: torch.nn.Module
    rotary: RotaryConfig
    options: BackendOptions
    layout_params: dict

    # ---- frame encoder -------------------------------------------------------------------
    @abstractmethod
    def visual_grid(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of visual tokens per benchmark frame for frames of ``frame_size`` (H, W)."""

    @abstractmethod
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """Temporal groups → visual token embedding rows ``[N, H·W tokens, row_width]`` on the CPU, in
        :attr:`dtype`. ``frames``: uint8 ``[N, H, W, 3]`` (each frame one group) or
        ``[N, T, H, W, 3]`` (T consecutive frames per group; a backend without a temporal patch
        refuses T > 1 with a :class:`VniahdError`). The result must not depend on how groups are
        batched (the cache encodes in chunks)."""

    @abstractmethod
    def encoder_fingerprint(self, frame_size: tuple[int, int]) -> str:
        """Hash of everything that changes :meth:`encode_frames`' output: encoder weights,
        preprocessing parameters, frame mode, dtype."""

    def tokens_per_frame(self, frame_size: tuple[int, int]) -> int:
        """Visual tokens (embedding rows) per benchmark frame of ``frame_size``."""
        h, w = self.visual_grid(frame_size)
        return h * w

    # ---- identity ------------------------------------------------------------------------
    @abstractmethod
    def fingerprint(self) -> str:
        """Identity of the whole model (text and vision), recorded in run.json."""

    def describe(self) -> dict:
        """What run.json records about the model (``input_width``: the row width, where rows are
        wider than the model, :mod:`vniahd.models.rows`)."""
        out = {
            "spec": self.spec,
            "fingerprint": self.fingerprint(),
            "rotary": self.rotary.to_dict(),
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "frame_mode": self.options.frame_mode,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "tokenizer": self.tokenizer.source,
            "layout_params": dict(self.layout_params),
        }
        if self.row_width != self.hidden_size:
            out["input_width"] = self.row_width
        return out

    # ---- text path (shared by every Qwen-style backend) -----------------------------------
    @property
    def device(self) -> torch.device:
        return self.options.torch_device()

    @property
    def dtype(self) -> torch.dtype:
        return self.options.torch_dtype()

    @property
    def hidden_size(self) -> int:
        """The text model's width ``d``."""
        config: Any = self.language_model.config  # a transformers config (nn.Module attribute)
        return int(config.hidden_size)

    @property
    def row_width(self) -> int:
        """Width of the evaluator's embedding rows (:meth:`encode_frames`, :meth:`embed_text`,
        :meth:`hidden_states`' input): ``hidden_size`` unless the backend packs more into a row
        (:class:`vniahd.models.rows.RowCodec`: Qwen3-VL's DeepStack, the tiny model's features)."""
        return self.hidden_size

    @property
    def vocab_size(self) -> int:
        return int(cast(torch.Tensor, self.lm_head.weight).shape[0])

    def embed_text(self, ids: list[int]) -> torch.Tensor:
        """Embedding rows [len(ids), row_width] on the model device."""
        t = torch.tensor(ids, dtype=torch.long, device=self.device)
        embed_tokens = cast(torch.nn.Module, self.language_model.embed_tokens)
        return embed_tokens(t)

    def hidden_states(
        self,
        embeds: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any = None,
        segments: Sequence[int] | None = None,
        shared: int = 0,
    ) -> torch.Tensor:
        """Final-norm hidden states [B, S, hidden] for ``embeds`` [B, S, row_width] at
        ``position_ids`` [3, B, S]; with ``cache`` (a transformers DynamicCache) the call extends
        it, so a prefix can be reused (chunked prefill, prefix sharing, greedy decoding).
        ``segments`` (only where :attr:`can_pack`): the S rows are a head of ``shared`` rows and
        then that many packed sequences; the head attends to the cache and causally to itself,
        each sequence to the cache, the head and causally to itself only (models/attention.py)."""
        return self._text_forward(embeds.to(self.dtype), position_ids, cache, segments, shared)

    def _text_forward(
        self,
        inputs_embeds: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any,
        segments: Sequence[int] | None,
        shared: int,
        **extra: Any,
    ) -> torch.Tensor:
        """The text model's final hidden states: positions on the device, the cache under its
        keyword, and the attention mask of :func:`~vniahd.models.attention.cached_attention_mask`
        (``extra``: model-specific inputs)."""
        from vniahd.models.attention import cached_attention_mask
        from vniahd.rope.hf import model_position_ids

        out = self.language_model(
            inputs_embeds=inputs_embeds,
            position_ids=model_position_ids(position_ids.to(device=self.device, dtype=torch.float32)),
            # new tokens over a cache on the CPU: attention without a dense mask (models/attention.py)
            attention_mask=cached_attention_mask(
                self.language_model, int(inputs_embeds.shape[1]), cache, segments, shared
            ),
            **cache_kwargs(self.language_model, cache),
            **extra,
        )
        hidden: torch.Tensor = out.last_hidden_state
        return hidden

    @property
    def can_pack(self) -> bool:
        """Whether :meth:`hidden_states` takes ``segments``: several samples' suffixes packed in
        one row over a shared cache (SDPA on the CPU, only full-attention layers)."""
        from vniahd.models.attention import packing_supported

        return packing_supported(self.language_model)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """LM head on the given rows only (float32 logits [..., vocab])."""
        return self.lm_head(hidden).float()

    def new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=cast("PreTrainedConfig", self.language_model.config))

    # ---- variants -------------------------------------------------------------------------
    def variant_record(self, variant: Variant) -> dict[str, Any]:
        """What scoring ``variant`` on this model applies, without applying it (run.json):
        the allocation's sections and per-pair axes, and which weights score it."""
        from vniahd.rope.model import applied_allocation

        return {**applied_allocation(variant, self.rotary), "weights": self.fingerprint()}

    @contextlib.contextmanager
    def use_variant(self, variant: Variant) -> Iterator[dict[str, Any]]:
        """Apply ``variant`` inside the block: the only way the evaluator applies a variant.

        The default installs the variant's frequency allocation in the text rotary module and
        puts the module that was there back on exit (also on error). Backends whose weights
        depend on the variant (the tiny model) also load those weights. Yields
        :meth:`variant_record`."""
        from vniahd.rope.hf import allocation_installed
        from vniahd.rope.model import variant_plan

        record = self.variant_record(variant)
        with allocation_installed(self.language_model, variant_plan(variant, self.rotary)):
            yield record


# ---- registry ---------------------------------------------------------------------------------
# ---- helpers shared by backends ----------------------------------------------------------------
def cache_keyword(module: torch.nn.Module) -> str:
    """The name under which ``module.forward`` takes its KV cache: ``cache`` (transformers ≥ 5.24;
    the old ``past_key_values`` is deprecated there and removed in 5.40) or ``past_key_values``.

    Read from the signature, never assumed: a name the forward does not declare lands in its
    ``**kwargs`` and is silently ignored, so every call would run without its cache."""
    import inspect

    names = inspect.signature(module.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in names:
            return name
    raise VniahdError(
        f"{type(module).__name__}.forward takes neither cache nor past_key_values; this transformers "
        "version is outside the tested range (see pyproject.toml), install transformers>=5.24,<5.40"
    )


def cache_kwargs(module: torch.nn.Module, cache: Any) -> dict[str, Any]:
    """``{<cache keyword>: cache, "use_cache": cache is not None}`` for ``module``'s forward."""
    return {cache_keyword(module): cache, "use_cache": cache is not None}


def module_weights_hash(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter and persistent buffer (name, dtype, shape, bytes) — exact."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def module_weights_digest(module: torch.nn.Module, sample: int = 4096) -> str:
    """Cheap weight identity for models too big to hash in full: per tensor its name, dtype,
    shape, first ``sample`` values' bytes and float64 sum (catches any re-initialisation)."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        head = flat[:sample].contiguous().cpu()
        total = float(flat.double().sum()) if flat.is_floating_point() else float(flat.sum())
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|{total!r}".encode())
        h.update(head.view(torch.uint8).numpy().tobytes() if head.numel() else b"")
    return h.hexdigest()
