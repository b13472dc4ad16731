"""The tiny video LM: frozen EfficientNet-Lite0 features → LayerNorm+Linear projector → a small
transformers ``Qwen2VLTextModel`` → an LM head tied to the word embeddings (as in Qwen2-VL-2B).

The RoPE variant is not part of the weights' architecture: positions come from
``Variant.positions`` and the frequency allocation is installed with
``vniahd.rope.hf.install_allocation``, exactly as for real Qwen2-VL checkpoints (docs/rope-math.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from vniahd.models.tiny.encoder import COLOUR_CHANNELS, FEATURE_DIM, POOL_GRID
from vniahd.rope.hf import install_allocation, model_position_ids
from vniahd.rope.model import RotaryConfig, variant_plan

if TYPE_CHECKING:
    from transformers import Qwen2VLTextConfig
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLTextModel

    from vniahd.rope import RotaryConfig, Variant


@dataclass(frozen=True)
class TinyConfig:
    """Architecture of the tiny model. Starting point: the feasibility prototype written before
    this package (2 layers, a 512-wide MLP); each default that differs from it says why, with
    what was measured."""

    hidden_size: int = 128
    #: 3 layers, not the prototype's 2: with 2, mapping the card's object to its option letter
    #: (after the colour lookup) was learnt in some seeds and stuck near 0.7 in others; 3 learnt
    #: it in every trial of one search, yet still failed for two VideoRoPE seeds later (fixed by
    #: ``tie_embeddings``). The narrower MLP (256, not 512) keeps the 2-layer model's step time.
    num_layers: int = 3
    num_heads: int = 4
    head_dim: int = 32
    intermediate_size: int = 256
    rope_theta: float = 1e4
    #: (t, h, w) rotary pairs for block allocations — Qwen2-VL's (16, 24, 24) of 64 scaled to 16.
    sections: tuple[int, int, int] = (4, 6, 6)
    feature_dim: int = FEATURE_DIM
    #: trailing feature channels normalised on their own (the encoder's stage-3 colour map), so
    #: 40 colour channels are not drowned by 1280 object channels in one LayerNorm.
    colour_dim: int = COLOUR_CHANNELS
    grid: tuple[int, int] = (POOL_GRID, POOL_GRID)
    rms_norm_eps: float = 1e-6
    #: std of the normal init. Qwen2's 0.02 left the q·k bilinear forms so small that the card
    #: lookup sat on a plateau for 1500 steps; 0.08 (≈ PyTorch's default 1/√d for d=128) did not.
    initializer_range: float = 0.08
    #: LM head = word embedding matrix (Qwen2-VL-2B ties them too). Untied, VideoRoPE seeds 0 and 1
    #: never learnt to map the card's object to its option letter (B/C confused, multiple-choice
    #: accuracy 0.75 at 16 frames, short answers 1.00); tied, both reached 0.99–1.00 by step 1500.
    #: Why it helps: the object word the lookup produces is then the same vector as the object
    #: part of its option token (E[letter] + E[object]), so matching the option is a dot product.
    tie_embeddings: bool = True

    @property
    def num_pairs(self) -> int:
        return self.head_dim // 2

    @property
    def rotary(self) -> RotaryConfig:
        """The text model's :class:`vniahd.rope.RotaryConfig` (what the variants apply to)."""

        return RotaryConfig(
            head_dim=self.head_dim,
            theta=float(self.rope_theta),
            sections=cast("tuple[int, int, int]", tuple(self.sections)),
            kv_heads=self.num_heads,
        )

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[0] * self.grid[1]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sections"] = list(self.sections)
        d["grid"] = list(self.grid)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TinyConfig:
        d = dict(d)
        d.setdefault("tie_embeddings", False)  # configs written before the field existed
        d["sections"] = tuple(d["sections"])
        d["grid"] = tuple(d["grid"])
        return cls(**d)

    def text_config(self, vocab_size: int) -> Qwen2VLTextConfig:
        """The ``Qwen2VLTextConfig`` of the language side."""
        from transformers import Qwen2VLTextConfig

        # head_dim and tie_word_embeddings are not declared fields of Qwen2VLTextConfig: its
        # dataclass_transform signature omits them, but PreTrainedConfig accepts extra keyword
        # arguments at run time (strict(accept_kwargs=True)) and keeps them as attributes.
        return Qwen2VLTextConfig(  # type: ignore[call-arg]
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads,
            head_dim=self.head_dim,
            max_position_embeddings=1 << 20,
            rms_norm_eps=self.rms_norm_eps,
            initializer_range=self.initializer_range,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": self.rope_theta,
                "mrope_section": list(self.sections),
            },
            tie_word_embeddings=False,  # the text model has no head; TinyVideoLM ties its own
            use_cache=False,
            pad_token_id=0,
            bos_token_id=None,
            eos_token_id=None,
        )


class FrameProjector(nn.Module):
    """Encoder features → d: LayerNorm per feature level (object | colour), concatenate, Linear."""

    def __init__(self, feature_dim: int, colour_dim: int, hidden_size: int):
        super().__init__()
        self.split = feature_dim - colour_dim
        self.object_norm = nn.LayerNorm(self.split)
        self.colour_norm = nn.LayerNorm(colour_dim) if colour_dim else None
        self.linear = nn.Linear(feature_dim, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [self.object_norm(x[..., : self.split])]
        if self.colour_norm is not None:
            parts.append(self.colour_norm(x[..., self.split :]))
        return self.linear(torch.cat(parts, dim=-1))


class TinyVideoLM(nn.Module):
    """Projector + ``Qwen2VLTextModel`` + LM head (tied to the word embeddings unless
    ``config.tie_embeddings`` is off). Call :meth:`set_variant` before use."""

    token_parts: torch.Tensor  # a non-persistent buffer (registered in __init__)

    def __init__(
        self,
        config: TinyConfig,
        vocab_size: int,
        text_model: Qwen2VLTextModel | None = None,
        token_parts: torch.Tensor | None = None,
    ):
        """``token_parts`` [V, 2]: the ids whose embeddings are summed for each token
        (:func:`vniahd.models.tiny.vocab.option_parts`; ``-1`` = none); default: each token alone."""
        super().__init__()
        if token_parts is None:
            token_parts = torch.stack([torch.arange(vocab_size), torch.full((vocab_size,), -1)], 1)
        # Not a parameter and not saved: rebuilt from the vocabulary on load.
        self.register_buffer("token_parts", token_parts.to(torch.long), persistent=False)
        from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLTextModel

        self.config = config
        self.vocab_size = vocab_size
        self.projector = FrameProjector(config.feature_dim, config.colour_dim, config.hidden_size)
        if text_model is None:
            text_cfg = config.text_config(vocab_size)
            text_cfg._attn_implementation = "sdpa"
            text_model = Qwen2VLTextModel(text_cfg)
        self.text_model = text_model
        self.lm_head = nn.Linear(config.hidden_size, vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.text_model.embed_tokens.weight
        self.variant_name: str | None = None

    # -- RoPE variant -------------------------------------------------------------------------
    def set_variant(self, variant: Variant) -> None:
        """Install ``variant``'s frequency allocation in the rotary module (positions are given
        per call). Allocation only changes which stream each pair reads; no weights change."""

        install_allocation(self.text_model, variant_plan(variant, self.config.rotary))
        self.variant_name = variant.name

    # -- pieces -------------------------------------------------------------------------------
    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings; an option token (``A. cat``) is ``E[A] + E[cat]``."""
        parts = self.token_parts[ids]  # [..., 2]
        emb = self.text_model.embed_tokens(parts[..., 0])
        second = parts[..., 1]
        has = second >= 0
        if bool(has.any()):
            emb = emb + self.text_model.embed_tokens(second.clamp(min=0)) * has[..., None].to(emb.dtype)
        return emb

    def embed_frames(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder features [..., 1320] → visual token embeddings [..., d]."""
        return self.projector(features)

    def hidden_states(
        self,
        inputs_embeds: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[B,S,d] embeddings + [3,B,S] positions → final hidden states [B,S,d]."""
        out = self.text_model(
            inputs_embeds=inputs_embeds,
            position_ids=model_position_ids(position_ids),
            attention_mask=attention_mask,
            use_cache=False,
        )
        return out.last_hidden_state

    def logits_at(self, hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Head applied only where needed: hidden [B,S,d], index [B,K] → logits [B,K,V]."""
        picked = torch.gather(hidden, 1, index[..., None].expand(-1, -1, hidden.shape[-1]))
        return self.lm_head(picked)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
