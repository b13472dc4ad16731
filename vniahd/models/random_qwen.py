"""``random:<family>``: random-weight models built from a config in code, one per registered family
(:mod:`vniahd.models.families`; each record's ``random_alias`` and ``random_config``: qwen2-vl,
qwen2.5-vl, qwen3-vl, qwen3-vl-moe, qwen3.5, qwen3.5-moe, glm-4.1v, glm-4.5v). This loader names no
family: what differs between them is in their records.

The numbers they give are meaningless; the plumbing is real (the transformers vision tower and text
model, our patchify, the local byte-level tokenizer). Used by the tests and the benchmarks.

Spec parameters (``random:qwen2-vl?layers=2&hidden=64``) or keyword arguments to ``get_backend``:

==================  =========  ============  ===================================================
parameter           tiny       ``size=7b``   meaning
==================  =========  ============  ===================================================
``layers``          2          28            text decoder layers
``hidden``          64         3584          text hidden size
``heads``           4          28            attention heads (head dim = hidden / heads)
``kv_heads``        2 (*)      4             key/value heads (*: Qwen3-VL families 4)
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

import math
from typing import TYPE_CHECKING, Any

import torch

from vniahd.errors import VniahdError
from vniahd.files import sha256_json
from vniahd.models import families
from vniahd.models.base import BackendOptions, module_weights_digest
from vniahd.models.families._random import block_sections
from vniahd.models.patchify import PatchifyConfig
from vniahd.models.qwen_vl import QwenVLBackend
from vniahd.models.tokenizer import byte_tokenizer

if TYPE_CHECKING:
    from vniahd.models.families import FamilyRecord

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
_SHARE = {2: "half", 4: "a quarter"}


def __getattr__(name: str) -> Any:
    if name == "FAMILIES":  # the registered ``random:`` aliases, in order (computed: families can be added)
        return tuple(families.random_aliases())
    raise AttributeError(name)


def _record(family: str, shown: str | None = None) -> FamilyRecord:
    record = families.by_random_alias(family)
    if record is None:
        raise VniahdError(
            f"unknown random model {shown or family!r}; use one of "
            + ", ".join("random:" + f for f in families.random_aliases())
        )
    return record


def resolve_params(params: dict, family: str | None = None) -> dict:
    """Defaults (by ``size``) overlaid with the user's parameters, typed and validated, for the
    ``random:`` alias ``family`` (None: a full-rotary family in t/h/w blocks that keeps the
    ``size=7b`` sections)."""
    record = _record(family) if family is not None else None
    unknown = set(params) - _KNOWN
    if unknown:
        raise VniahdError(
            f"unknown random-model parameter(s) {sorted(unknown)}; valid: {', '.join(sorted(_KNOWN))}"
        )
    size = str(params.get("size", "tiny")).lower()
    if size not in ("tiny", "7b"):
        raise VniahdError(f"unknown size {size!r} for a random model; use size=tiny or size=7b")
    out: dict[str, Any] = dict(TINY if size == "tiny" else SEVEN_B)
    if record is not None and not record.random_7b_sections:
        out.pop("sections", None)  # (16, 24, 24) is Qwen2-VL-7B's; other families take their own
    for key, value in params.items():
        if key == "size":
            continue
        try:
            out[key] = int(value) if key in _INT else (float(value) if key == "theta" else value)
        except (TypeError, ValueError):
            raise VniahdError(f"random-model parameter {key}={value!r} is not a number") from None
    out["size"] = size
    for key in sorted(_INT):
        least = 0 if key == "seed" else 1
        if out[key] < least:
            raise VniahdError(
                f"random-model parameter {key}={out[key]} must be at least {least}; e.g. {key}={TINY[key]}"
            )
    if not math.isfinite(out["theta"]) or out["theta"] <= 0:
        raise VniahdError(f"random-model parameter theta={out['theta']} must be a positive number, e.g. 1e4")
    if out["hidden"] % out["heads"] or (out["hidden"] // out["heads"]) % 2:
        raise VniahdError(f"hidden={out['hidden']} must split into heads={out['heads']} of even size")
    if out["heads"] % out["kv_heads"]:
        raise VniahdError(f"heads={out['heads']} must be a multiple of kv_heads={out['kv_heads']}")
    pairs = out["hidden"] // out["heads"] // 2
    divisor = record.rotary_divisor() if record is not None else 1
    if divisor > 1:  # partial rotary: a share of each head rotates
        pairs //= divisor
        if pairs < 3:
            raise VniahdError(
                f"{family} needs hidden/heads ≥ {6 * divisor} so that "
                f"{_SHARE.get(divisor, f'1/{divisor}')} of it gives 3 rotary pairs"
            )
    if "sections" not in out:
        if record is not None and record.native_allocation == "interleaved":  # Qwen3-VL's 24:20:20 of 64
            from vniahd.rope import default_sections

            out["sections"] = default_sections(pairs, "interleaved")
        else:  # Qwen2-VL's proportions 16:24:24 of 64 pairs
            out["sections"] = block_sections(pairs)
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


def build_config(family: str, p: dict, bos: int | None, eos: int | None) -> Any:
    """The transformers config of ``random:<family>`` with resolved parameters ``p``."""
    return _record(family).random_config(p, bos, eos)


def create_backend(name: str, params: dict, options: BackendOptions) -> QwenVLBackend:
    """Factory for ``random:<family>``."""
    family = name.lower()
    record = _record(family, name)
    p = resolve_params({**record.random_defaults, **params}, family)
    tokenizer = byte_tokenizer()
    if p["vocab"] < tokenizer.vocab_size:
        raise VniahdError(f"vocab={p['vocab']} is smaller than the tokenizer ({tokenizer.vocab_size} ids)")
    config = build_config(
        family, p, bos=tokenizer.token_id("<|endoftext|>"), eos=tokenizer.token_id("<|im_end|>")
    )
    device, dtype = options.torch_device(), options.torch_dtype()
    config._attn_implementation = "sdpa"
    cls = record.model_class()
    # Initialise on the target device in the run dtype (a 7B model never exists in fp32 on host).
    # _from_config(dtype=…) keeps the rotary inv_freq buffers in float32, as from_pretrained does.
    torch.manual_seed(p["seed"])
    with torch.device(device):
        model = cls._from_config(config, dtype=dtype)
    model = model.eval()
    patch = PatchifyConfig(patch_size=p["patch"], temporal_patch_size=2, merge_size=2, **record.random_patch)
    vision = model.config.vision_config
    layout_params = {k: int(getattr(vision, k, d)) for k, d in record.vision_layout_params.items()}
    ident = {
        "family": family,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()},
        "init_device": device.type,
        "dtype": str(dtype),
        "torch": torch.__version__,
    }
    backend: QwenVLBackend = record.build_backend(
        spec=f"random:{family}"
        + ("?" + "&".join(f"{k}={v}" for k, v in sorted(params.items())) if params else ""),
        model=model,
        tokenizer=tokenizer,
        patch=patch,
        options=options,
        model_fingerprint=lambda: sha256_json({**ident, "weights": module_weights_digest(model)}),
        layout_params=layout_params,
        family=record.random_family,
    )
    return backend
