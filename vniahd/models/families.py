"""Each supported model family's own conventions, in one table (:data:`FAMILIES`).

Two things differ between the Qwen-VL-style families and are decided here, nowhere else:

- **native positions** — what ``--variant native`` becomes on a model (:func:`native_variant`):
  the family's own position layout, as its authors' ``get_rope_index`` computes it, with the
  model's own frequency allocation and ``mrope_section``. Qwen2-VL: ``mrope``; Qwen2.5-VL:
  ``mrope-timed`` (``tokens_per_second`` from the model's vision config, ``second_per_grid_t`` =
  the seconds one temporal group spans in the dataset); Qwen3-VL, Qwen3-VL-MoE, Qwen3.5 and
  GLM-4.1V: ``mrope-frames`` (every frame its own grid, time carried by timestamp text).
- **native markup** — how the family's chat template and processor write a video into the
  prompt (:class:`Markup`; ``--prompt native``, :mod:`vniahd.evaluation.execution.prompt_layout`): the vision
  start/end markers around the video or around each temporal group, and the per-group
  timestamp text of Qwen3-VL (``<1.5 seconds>`` before a group) and GLM-4.1V (``1`` after it).

Torch-free. A backend names its family in ``backend.family`` (``hf:`` uses the checkpoint's
``model_type``; ``random:`` its own spelling, mapped by :data:`ALIASES`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from vniahd.errors import VniahdError

if TYPE_CHECKING:
    from vniahd.rope import Variant


@dataclass(frozen=True)
class Markup:
    """How a family's chat template + processor write a video (or a sequence of images).

    ``frame_before`` / ``frame_after`` surround each temporal group of a video and may hold
    ``{t}`` (seconds, float) or ``{t_int}`` (``int(seconds)``); ``timestamp`` says which time a
    group carries: ``"mid"`` (mean of its first and last frame's time, Qwen3-VL's
    ``_calculate_timestamps``), ``"first"`` (its first frame's, GLM-4.1V's ``timestamps[::2]``) or
    ``""`` (no timestamps). ``image_*``: around each frame when frames are laid out as images.
    ``image_token`` / ``video_token``: the placeholder the processor repeats for each visual token.
    """

    video_start: str
    video_end: str
    frame_before: str
    frame_after: str
    image_before: str
    image_after: str
    timestamp: str
    image_token: str
    video_token: str
    source: str

    def group_seconds(self, group: int, fps: float, frames_per_group: int) -> float:
        """The time the processor gives temporal group ``group`` of a video sampled at ``fps``
        whose groups hold ``frames_per_group`` consecutive frames (a group of one frame is that
        frame repeated, as vniahd and the image processor build it)."""
        first = group * frames_per_group
        last = first + frames_per_group - 1
        if self.timestamp == "mid":
            return (first / fps + last / fps) / 2
        return first / fps

    def frame_text(self, group: int, fps: float | None, frames_per_group: int) -> tuple[str, str]:
        """The text right before and right after temporal group ``group`` of a video."""
        if not self.timestamp:
            return self.frame_before, self.frame_after
        if not fps:
            raise VniahdError(
                "--prompt native writes a timestamp before each frame for this model family, but "
                "the dataset records no fps; regenerate it with 'vniahd generate --fps …' or use "
                "--prompt reference"
            )
        t = self.group_seconds(group, float(fps), frames_per_group)
        fields = {"t": t, "t_int": int(t)}
        return self.frame_before.format(**fields), self.frame_after.format(**fields)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Family:
    """One model family: its name, native layout (with its source) and markup."""

    name: str
    layout: str
    source: str
    markup: Markup


_QWEN2_MARKUP = Markup(
    video_start="<|vision_start|>",
    video_end="<|vision_end|>",
    frame_before="",
    frame_after="",
    image_before="<|vision_start|>",
    image_after="<|vision_end|>",
    timestamp="",
    image_token="<|image_pad|>",
    video_token="<|video_pad|>",
    source="Qwen2-VL / Qwen2.5-VL chat template: a video is <|vision_start|><|video_pad|><|vision_end|> "
    "(an image <|vision_start|><|image_pad|><|vision_end|>); the processor repeats the pad once per "
    "merged visual token",
)
_QWEN3_MARKUP = Markup(
    video_start="",
    video_end="",
    frame_before="<{t:.1f} seconds><|vision_start|>",
    frame_after="<|vision_end|>",
    image_before="<|vision_start|>",
    image_after="<|vision_end|>",
    timestamp="mid",
    image_token="<|image_pad|>",
    video_token="<|video_pad|>",
    source="Qwen3VLProcessor as released (transformers 4.57): the chat template's "
    "<|vision_start|><|video_pad|><|vision_end|> becomes, per temporal group, "
    "'<{t:.1f} seconds>' + <|vision_start|> + pads + <|vision_end|>, t = mean time of the group's "
    "first and last frame (_calculate_timestamps); Qwen3.5 uses the same processor",
)
_GLM_MARKUP = Markup(
    video_start="<|begin_of_video|>",
    video_end="<|end_of_video|>",
    frame_before="<|begin_of_image|>",
    frame_after="<|end_of_image|>{t_int}",
    image_before="<|begin_of_image|>",
    image_after="<|end_of_image|>",
    timestamp="first",
    image_token="<|image|>",
    video_token="<|image|>",
    source="GLM-4.1V chat template (<|begin_of_video|><|video|><|end_of_video|>) and Glm4vProcessor: "
    "per temporal group <|begin_of_image|> + <|image|> pads + <|end_of_image|> + int(seconds of "
    "the group's first frame) (replace_frame_token_id, metadata.timestamps[::2])",
)

_FRAMES_SOURCE = (
    "{name}: get_rope_index splits a video into one-frame grids (t index 0 inside each frame, "
    "time carried by the timestamp text between frames), the next run starting one past the "
    "largest position"
)

#: ``backend.family`` → :class:`Family`.
FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family(
        "Qwen2-VL",
        "mrope",
        "Qwen2-VL (arXiv 2409.12191) §2.1; Qwen2VLForConditionalGeneration.get_rope_index as "
        "released (transformers 4.45): the text after a video starts at the largest position + 1 "
        "= S0 + max(T, H, W) (transformers 5.x starts it at S0 + max(H, W); docs/footguns.md)",
        _QWEN2_MARKUP,
    ),
    "qwen2_5_vl": Family(
        "Qwen2.5-VL",
        "mrope-timed",
        "Qwen2.5-VL (arXiv 2502.13923) §2.1; Qwen2_5_VLForConditionalGeneration.get_rope_index as "
        "released (transformers 4.49): temporal index int(f · second_per_grid_t · "
        "tokens_per_second), the text after a video at the largest position + 1 (transformers 5.x: "
        "S0 + max(H, W); docs/footguns.md)",
        _QWEN2_MARKUP,
    ),
    "qwen3_vl": Family("Qwen3-VL", "mrope-frames", _FRAMES_SOURCE.format(name="Qwen3VLModel"), _QWEN3_MARKUP),
    "qwen3_vl_moe": Family(
        "Qwen3-VL-MoE", "mrope-frames", _FRAMES_SOURCE.format(name="Qwen3VLMoeModel"), _QWEN3_MARKUP
    ),
    "qwen3_5": Family("Qwen3.5", "mrope-frames", _FRAMES_SOURCE.format(name="Qwen3_5Model"), _QWEN3_MARKUP),
    "qwen3_5_moe": Family(
        "Qwen3.5-MoE", "mrope-frames", _FRAMES_SOURCE.format(name="Qwen3_5MoeModel"), _QWEN3_MARKUP
    ),
    "glm4v": Family(
        "GLM-4.1V",
        "mrope-frames",
        _FRAMES_SOURCE.format(name="Glm4vModel (as released, transformers 4.53)"),
        _GLM_MARKUP,
    ),
    "glm4v_moe": Family("GLM-4.5V", "mrope-frames", _FRAMES_SOURCE.format(name="Glm4vMoeModel"), _GLM_MARKUP),
}

#: ``random:`` backends spell some families differently from the checkpoints' ``model_type``.
ALIASES = {"glm_4_1v": "glm4v", "glm_4_5v": "glm4v_moe"}


def family_of(backend: Any) -> Family:
    """The :class:`Family` of a loaded backend, or a :class:`VniahdError` naming what to do."""
    name = getattr(backend, "family", None)
    name = ALIASES.get(name, name) if isinstance(name, str) else None
    if name not in FAMILIES:
        raise VniahdError(
            f"{backend.spec} has no native positions or prompt markup in vniahd (native covers "
            f"{', '.join(f.name for f in FAMILIES.values())}); the tiny model is trained per "
            "variant, so name a variant (e.g. mrope) and use --prompt reference"
        )
    return FAMILIES[name]


def native_variant(backend: Any, fps: float | None, frames_per_group: int = 1) -> Variant:
    """``--variant native`` on ``backend``: its family's layout with the model's own allocation and
    sections; a timed layout takes ``tokens_per_second`` from the model and ``second_per_grid_t``
    = ``frames_per_group / fps`` (what one temporal group spans; the processor's
    ``temporal_patch_size / fps``)."""
    from vniahd.rope import make_variant
    from vniahd.rope.presets import NATIVE

    fam = family_of(backend)
    rot = backend.rotary
    params: dict[str, float] = {}
    if fam.layout == "mrope-timed":
        if "tokens_per_second" in backend.layout_params:
            params["tokens_per_second"] = float(backend.layout_params["tokens_per_second"])
        if fps:
            params["second_per_grid_t"] = float(frames_per_group) / float(fps)
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
