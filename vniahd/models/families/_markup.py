"""How a family's chat template and processor write a video into the prompt (:class:`Markup`).

Used by ``--prompt native`` (:mod:`vniahd.evaluation.execution.prompt_layout`); each family's record
(:mod:`vniahd.models.families`) holds its own. Torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vniahd.errors import VniahdError


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


#: The source of ``mrope-frames`` as a family's ``get_rope_index`` computes it (``{name}``: its class).
FRAMES_SOURCE = (
    "{name}: get_rope_index splits a video into one-frame grids (t index 0 inside each frame, "
    "time carried by the timestamp text between frames), the next run starting one past the "
    "largest position"
)
