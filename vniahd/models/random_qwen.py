"""``random:<family>``: random-weight models built from a config in code, one per supported family
(:data:`FAMILIES`: qwen2-vl, qwen2.5-vl, qwen3-vl, qwen3-vl-moe, qwen3.5, qwen3.5-moe, glm-4.1v,
glm-4.5v).

The numbers they give are meaningless; the plumbing is real (the transformers vision tower and text
model, our patchify, the local byte-level tokenizer). Used by the tests and the benchmarks.

Spec parameters (``random:qwen2-vl?layers=2&hidden=64``) or keyword arguments to ``get_backend``:

==================  =========  ============  ===================================================
parameter           tiny       ``size=7b``   meaning
==================  =========  ============  ===================================================
``layers``          2          28            text decoder layers
``hidden``          64         3584          text hidden size
``heads``           4          28            attention heads (head dim = hidden / heads)
``kv_heads``        2          4             key/value heads
``intermediate``    128        18944         MLP width
``vocab``           512        152064        LM-head rows (≥ the tokenizer's 276 ids)
``theta``           10000      1e6           RoPE base β
``sections``        P/4,3P/8…  16,24,24      (t, h, w) rotary pairs, comma separated
``vision_depth``    1          32            vision blocks
``vision_dim``      32         1280          vision embed dim
``vision_heads``    2          16            vision heads
``patch``           14         14            vision patch size (merge 2, temporal patch 2)
``experts``         4          8             routed experts per MoE layer (MoE families only)
``experts_active``  2          2             experts per token (each expert MLP is
                                             ``intermediate / experts_active`` wide)
``seed``            0          0             torch seed for the random init
==================  =========  ============  ===================================================

``size=7b`` selects the Qwen2-VL-7B / Qwen2.5-VL-7B shapes (build it on a GPU:
``--device cuda``; weights are initialised directly on the device in the run dtype).

``random:qwen3-vl`` and ``random:qwen3-vl-moe`` (:mod:`vniahd.models.qwen3_vl`; the MoE one with
4 small experts, 2 active, in every layer) default to 16-pixel patches, a 2-block vision
tower whose blocks both feed DeepStack features, interleaved t/h/w sections (Qwen3-VL's 24:20:20
proportions) and the mean = std = 0.5 pixel normalisation of its processor. ``random:qwen3.5`` and
``random:qwen3.5-moe`` (4 layers: three Gated DeltaNet, one full attention; hidden 128) take the
same vision defaults. ``random:glm-4.1v`` and ``random:glm-4.5v`` rotate half of each head in M-RoPE
blocks (GLM-4.1V in adjacent pairs, GLM-4.5V in NeoX halves, as their transformers code does); the
MoE families (``qwen3-vl-moe``, ``qwen3.5-moe``, ``glm-4.5v``: a dense first layer, then routed and
one shared expert) take ``experts`` and ``experts_active``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from vniahd.errors import VniahdError
from vniahd.files import sha256_json
from vniahd.models.base import BackendOptions, module_weights_digest
from vniahd.models.patchify import PatchifyConfig
from vniahd.models.qwen_vl import QwenVLBackend
from vniahd.models.tokenizer import byte_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel

FAMILIES = (
    "qwen2-vl",
    "qwen2.5-vl",
    "qwen3-vl",
    "qwen3-vl-moe",
    "qwen3.5",
    "qwen3.5-moe",
    "glm-4.1v",
    "glm-4.5v",
)
#: The families with GLM's partial rotary (half of each head) and M-RoPE blocks (8, 12, 12).
GLM = ("glm-4.1v", "glm-4.5v")
#: The Qwen3.5 families: hybrid Gated DeltaNet / full-attention text layers, a quarter of each head rotates.
QWEN35 = ("qwen3.5", "qwen3.5-moe")

TINY = dict(
    layers=2,
    hidden=64,
    heads=4,
    kv_heads=2,
    intermediate=128,
    vocab=512,
    theta=1e4,
    vision_depth=1,
    vision_dim=32,
    vision_heads=2,
    patch=14,
    experts=4,
    experts_active=2,
    seed=0,
)
SEVEN_B = dict(
    layers=28,
    hidden=3584,
    heads=28,
    kv_heads=4,
    intermediate=18944,
    vocab=152064,
    theta=1e6,
    sections="16,24,24",
    vision_depth=32,
    vision_dim=1280,
    vision_heads=16,
    patch=14,
    experts=8,
    experts_active=2,
    seed=0,
)
_INT = {
    "layers",
    "hidden",
    "heads",
    "kv_heads",
    "intermediate",
    "vocab",
    "vision_depth",
    "vision_dim",
    "vision_heads",
    "patch",
    "experts",
    "experts_active",
    "seed",
}
_KNOWN = _INT | {"theta", "sections", "size"}


def resolve_params(params: dict, family: str = "qwen2-vl") -> dict:
    """Defaults (by ``size``) overlaid with the user's parameters, typed and validated."""
    unknown = set(params) - _KNOWN
    if unknown:
        raise VniahdError(
            f"unknown random-model parameter(s) {sorted(unknown)}; valid: {', '.join(sorted(_KNOWN))}"
        )
    size = str(params.get("size", "tiny")).lower()
    if size not in ("tiny", "7b"):
        raise VniahdError(f"unknown size {size!r} for a random model; use size=tiny or size=7b")
    out: dict[str, Any] = dict(TINY if size == "tiny" else SEVEN_B)
    if family not in ("qwen2-vl", "qwen2.5-vl"):
        out.pop("sections", None)  # (16, 24, 24) is Qwen2-VL-7B's; other families take their own
    for key, value in params.items():
        if key == "size":
            continue
        try:
            out[key] = int(value) if key in _INT else (float(value) if key == "theta" else value)
        except (TypeError, ValueError):
            raise VniahdError(f"random-model parameter {key}={value!r} is not a number") from None
    out["size"] = size
    if out["hidden"] % out["heads"] or (out["hidden"] // out["heads"]) % 2:
        raise VniahdError(f"hidden={out['hidden']} must split into heads={out['heads']} of even size")
    if out["heads"] % out["kv_heads"]:
        raise VniahdError(f"heads={out['heads']} must be a multiple of kv_heads={out['kv_heads']}")
    pairs = out["hidden"] // out["heads"] // 2
    if family in GLM:  # partial rotary: half of each head rotates
        pairs //= 2
        if pairs < 3:
            raise VniahdError(f"{family} needs hidden/heads ≥ 12 so that half of it gives 3 rotary pairs")
        if "sections" not in out:  # GLM-4.1V's 8:12:12 of 32 pairs
            t = max(1, pairs // 4)
            out["sections"] = (t, (pairs - t) // 2, pairs - t - (pairs - t) // 2)
    if family in QWEN35:  # partial rotary: a quarter of each head rotates (Qwen3.5's 0.25)
        pairs //= 4
        if pairs < 3:
            raise VniahdError(
                f"{family} needs hidden/heads ≥ 24 so that a quarter of it gives 3 rotary pairs"
            )
    if "sections" not in out and (
        family.startswith("qwen3-vl") or family in QWEN35
    ):  # Qwen3-VL's interleaved 24:20:20 of 64
        from vniahd.rope import default_sections

        out["sections"] = default_sections(pairs, "interleaved")
    if "sections" not in out:  # Qwen2-VL's proportions 16:24:24 of 64 pairs
        t = max(1, pairs // 4)
        h = (pairs - t) // 2
        out["sections"] = (t, h, pairs - t - h)
    elif isinstance(out["sections"], str):
        try:
            out["sections"] = tuple(int(s) for s in out["sections"].split(","))
        except ValueError:
            raise VniahdError(f"sections={out['sections']!r} must be three integers like 4,6,6") from None
    out["sections"] = tuple(out["sections"])
    if len(out["sections"]) != 3 or sum(out["sections"]) != pairs:
        raise VniahdError(f"sections {out['sections']} must be three numbers summing to head_dim/2 = {pairs}")
    if not 1 <= out["experts_active"] <= out["experts"]:
        raise VniahdError(
            f"experts_active={out['experts_active']} must be between 1 and experts={out['experts']}"
        )
    if out["vision_dim"] % out["vision_heads"]:
        raise VniahdError("vision_dim must be a multiple of vision_heads")
    return out


def build_config(family: str, p: dict, bos: int | None, eos: int | None):
    """The transformers config for ``family`` with resolved parameters ``p``."""
    rope = {"rope_type": "default", "rope_theta": p["theta"], "mrope_section": list(p["sections"])}
    text = dict(
        vocab_size=p["vocab"],
        hidden_size=p["hidden"],
        intermediate_size=p["intermediate"],
        num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"],
        num_key_value_heads=p["kv_heads"],
        max_position_embeddings=1 << 20,
        rope_parameters=rope,
        bos_token_id=bos,
        eos_token_id=eos,
    )
    # the vision tower of the Qwen3-VL / GLM-4.1V shape: merged tokens projected to the text width
    tower = dict(
        depth=p["vision_depth"],
        hidden_size=p["vision_dim"],
        intermediate_size=p["vision_dim"] * 2,
        num_heads=p["vision_heads"],
        patch_size=p["patch"],
        spatial_merge_size=2,
        temporal_patch_size=2,
        out_hidden_size=p["hidden"],
    )
    if family in GLM:
        from transformers import Glm4vConfig, Glm4vMoeConfig

        # GLM-4.1V rotates half of each head (partial_rotary_factor 0.5) in adjacent pairs,
        # M-RoPE blocks (8, 12, 12) of its 32 rotary pairs; GLM-4.5V the same half in NeoX halves
        text_glm = {**text, "rope_parameters": {**rope, "partial_rotary_factor": 0.5}}
        vision_glm = {**tower, "image_size": 336 if p["size"] == "7b" else 112}
        if family == "glm-4.5v":  # GLM-4.5V's design: a dense first layer, then routed + shared experts
            text_glm.update(
                head_dim=p["hidden"] // p["heads"],
                n_routed_experts=p["experts"],
                num_experts_per_tok=p["experts_active"],
                n_shared_experts=1,
                moe_intermediate_size=p["intermediate"] // p["experts_active"],
                first_k_dense_replace=1,
                n_group=1,
                topk_group=1,
            )
            return Glm4vMoeConfig(text_config=text_glm, vision_config=vision_glm)
        return Glm4vConfig(text_config=text_glm, vision_config=vision_glm)
    if family in QWEN35:
        from transformers import Qwen3_5Config, Qwen3_5MoeConfig

        head = p["hidden"] // p["heads"]
        text35 = {
            **text,
            "head_dim": head,
            "rope_parameters": {**rope, "mrope_interleaved": True, "partial_rotary_factor": 0.25},
            # three Gated DeltaNet layers, then one full-attention layer (Qwen3.5's pattern)
            "layer_types": [
                "full_attention" if i % 4 == 3 else "linear_attention" for i in range(p["layers"])
            ],
            "linear_key_head_dim": head,
            "linear_value_head_dim": head,
            "linear_num_key_heads": p["kv_heads"],
            "linear_num_value_heads": p["heads"],
        }
        vision35 = {**tower, "num_position_embeddings": 2304 if p["size"] == "7b" else 256}
        if family == "qwen3.5-moe":  # routed experts plus one shared expert in every layer
            text35.update(
                num_experts=p["experts"],
                num_experts_per_tok=p["experts_active"],
                moe_intermediate_size=p["intermediate"] // p["experts_active"],
                shared_expert_intermediate_size=p["intermediate"] // p["experts_active"],
            )
            return Qwen3_5MoeConfig(text_config=text35, vision_config=vision35)
        return Qwen3_5Config(text_config=text35, vision_config=vision35)
    if family.startswith("qwen3-vl"):
        from transformers import Qwen3VLConfig, Qwen3VLMoeConfig

        pairs = p["hidden"] // p["heads"] // 2
        text3 = {**text, "head_dim": 2 * pairs, "rope_parameters": {**rope, "mrope_interleaved": True}}
        depth = p["vision_depth"]
        vision3 = {
            **tower,
            "num_position_embeddings": 2304 if p["size"] == "7b" else 256,
            # Qwen3-VL-8B taps blocks 8, 16, 24 of 27; a small tower taps up to three of its blocks
            "deepstack_visual_indexes": [8, 16, 24] if depth >= 25 else list(range(min(3, depth))),
        }
        if family == "qwen3-vl-moe":  # a few small experts in every layer (Qwen3-VL-30B-A3B's design)
            text3.update(
                num_experts=p["experts"],
                num_experts_per_tok=p["experts_active"],
                moe_intermediate_size=p["intermediate"] // p["experts_active"],
                decoder_sparse_step=1,
            )
            return Qwen3VLMoeConfig(text_config=text3, vision_config=vision3)
        return Qwen3VLConfig(text_config=text3, vision_config=vision3)
    if family == "qwen2-vl":
        from transformers import Qwen2VLConfig

        vision = dict(
            depth=p["vision_depth"],
            embed_dim=p["vision_dim"],
            hidden_size=p["hidden"],
            num_heads=p["vision_heads"],
            patch_size=p["patch"],
            spatial_merge_size=2,
            temporal_patch_size=2,
            mlp_ratio=4,
        )
        return Qwen2VLConfig(text_config=text, vision_config=vision)
    from transformers import Qwen2_5_VLConfig

    depth = p["vision_depth"]
    vision = dict(
        depth=depth,
        hidden_size=p["vision_dim"],
        out_hidden_size=p["hidden"],
        intermediate_size=p["vision_dim"] * 8 // 3 if p["size"] == "tiny" else 3420,
        num_heads=p["vision_heads"],
        patch_size=p["patch"],
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=p["patch"] * 8,
        tokens_per_second=2,
        fullatt_block_indexes=[i for i in range(depth) if i % 8 == 7] or [depth - 1],
    )
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision)


def create_backend(name: str, params: dict, options: BackendOptions) -> QwenVLBackend:
    """Factory for ``random:<family>``."""
    family = name.lower()
    if family not in FAMILIES:
        raise VniahdError(
            f"unknown random model {name!r}; use one of {', '.join('random:' + f for f in FAMILIES)}"
        )
    qwen3 = family.startswith("qwen3-vl") or family in QWEN35
    defaults = {"patch": 16, "vision_depth": 2}
    if family in QWEN35:  # 4 layers: one full-attention layer after three recurrent ones
        defaults.update(layers=4, hidden=128)
    p = resolve_params({**defaults, **params} if qwen3 else params, family)
    tokenizer = byte_tokenizer()
    if p["vocab"] < tokenizer.vocab_size:
        raise VniahdError(f"vocab={p['vocab']} is smaller than the tokenizer ({tokenizer.vocab_size} ids)")
    config = build_config(
        family, p, bos=tokenizer.token_id("<|endoftext|>"), eos=tokenizer.token_id("<|im_end|>")
    )
    device, dtype = options.torch_device(), options.torch_dtype()
    config._attn_implementation = "sdpa"
    cls: type[PreTrainedModel]
    if family == "qwen2-vl":
        from transformers import Qwen2VLForConditionalGeneration as cls
    elif family == "qwen3-vl":
        from transformers import Qwen3VLForConditionalGeneration as cls
    elif family == "qwen3-vl-moe":
        from transformers import Qwen3VLMoeForConditionalGeneration as cls
    elif family == "glm-4.1v":
        from transformers import Glm4vForConditionalGeneration as cls
    elif family == "glm-4.5v":
        from transformers import Glm4vMoeForConditionalGeneration as cls
    elif family == "qwen3.5":
        from transformers import Qwen3_5ForConditionalGeneration as cls
    elif family == "qwen3.5-moe":
        from transformers import Qwen3_5MoeForConditionalGeneration as cls
    else:
        from transformers import Qwen2_5_VLForConditionalGeneration as cls
    # Initialise on the target device in the run dtype (a 7B model never exists in fp32 on host).
    # _from_config(dtype=…) keeps the rotary inv_freq buffers in float32, as from_pretrained does.
    torch.manual_seed(p["seed"])
    with torch.device(device):
        model = cls._from_config(config, dtype=dtype)
    model = model.eval()
    patch = PatchifyConfig(patch_size=p["patch"], temporal_patch_size=2, merge_size=2)
    if family in GLM:
        # GLM's processor budgets pixels over the 2 repeated frames of an image: half per frame
        patch = PatchifyConfig(
            patch_size=p["patch"],
            temporal_patch_size=2,
            merge_size=2,
            min_pixels=112 * 112 // 2,
            max_pixels=28 * 28 * 15000 // 2,
        )
    if qwen3:  # its processor normalises with mean = std = 0.5 and 16-pixel patches
        patch = PatchifyConfig(
            patch_size=p["patch"],
            temporal_patch_size=2,
            merge_size=2,
            min_pixels=64 * 64,
            image_mean=(0.5, 0.5, 0.5),
            image_std=(0.5, 0.5, 0.5),
        )
    layout_params = {"tokens_per_second": 2} if family == "qwen2.5-vl" else {}
    ident = {
        "family": family,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()},
        "init_device": device.type,
        "dtype": str(dtype),
        "torch": torch.__version__,
    }
    backend_cls = QwenVLBackend
    if family in QWEN35:
        from vniahd.models.qwen3_5 import Qwen35Backend

        backend_cls = Qwen35Backend
    elif qwen3:
        from vniahd.models.qwen3_vl import Qwen3VLBackend

        backend_cls = Qwen3VLBackend
    return backend_cls(
        spec=f"random:{family}"
        + ("?" + "&".join(f"{k}={v}" for k, v in sorted(params.items())) if params else ""),
        model=model,
        tokenizer=tokenizer,
        patch=patch,
        options=options,
        model_fingerprint=lambda: sha256_json({**ident, "weights": module_weights_digest(model)}),
        layout_params=layout_params,
        family=family.replace("-", "_").replace(".", "_"),
    )
