"""Sequence segments: the pieces a position layout lays out.

A sequence is a list of segments in order: :class:`Text` runs, :class:`Video` clips (``frames``
temporal groups, each a ``height × width`` grid of merged visual tokens in row-major order) and
:class:`Image` s. An image is laid out exactly like a one-frame video (docs/rope-math.md), which is also
how Qwen2-VL's ``get_rope_index`` treats it (grid_t = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vniahd.errors import VniahdError


def _check_count(kind: str, name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise VniahdError(f"{kind} {name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Text:
    """``n`` text tokens (n may be 0: an empty run lays out nothing)."""

    n: int

    def __post_init__(self) -> None:
        _check_count("Text", "n", self.n, 0)

    @property
    def num_tokens(self) -> int:
        return self.n


@dataclass(frozen=True)
class Video:
    """``frames`` temporal groups of ``height × width`` visual tokens (row-major per frame)."""

    frames: int
    height: int
    width: int

    def __post_init__(self) -> None:
        _check_count("Video", "frames", self.frames, 1)
        _check_count("Video", "height", self.height, 1)
        _check_count("Video", "width", self.width, 1)

    @property
    def num_tokens(self) -> int:
        return self.frames * self.height * self.width


class Image(Video):
    """A ``height × width`` grid of visual tokens: a one-frame :class:`Video`."""

    def __init__(self, height: int, width: int):
        super().__init__(1, height, width)

    def __repr__(self) -> str:
        return f"Image(height={self.height}, width={self.width})"


Segment = Text | Video


def num_tokens(segments: Sequence[Segment]) -> int:
    """Total token count of a sequence."""
    return sum(seg.num_tokens for seg in segments)


def check_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Return ``segments`` as a list after checking every item is a segment."""
    if isinstance(segments, (Text, Video)):
        segments = [segments]
    out = list(segments)
    for seg in out:
        if not isinstance(seg, (Text, Video)):
            raise VniahdError(
                f"a sequence is a list of Text/Video/Image segments, got {type(seg).__name__}; "
                "build it as e.g. [Text(2), Video(3, 2, 3), Text(2)]"
            )
    return out


def simple_sequence(text_before: int, frames: int, height: int, width: int, text_after: int) -> list[Segment]:
    """The usual benchmark shape: ``Text(N), Video(T, H, W), Text(M)``."""
    return build_segments(text_before, frames, (height, width), text_after, "video")


def build_segments(
    n_before: int, frames: int, grid: tuple[int, int], n_after: int, frame_mode: str
) -> list[Segment]:
    """A sample's segments with no text between its ``frames`` (``frames`` >= 1): ``Text(n_before)``,
    one ``Video`` (``video`` mode) or ``frames`` ``Image`` s (``image`` mode), ``Text(n_after)``."""
    _check_count("build_segments", "frames", frames, 1)
    return frame_segments([n_before, *([0] * (frames - 1)), n_after], grid, frame_mode, 0)


def frame_segments(
    chunk_lengths: Sequence[int], grid: tuple[int, int], frame_mode: str, room: int
) -> list[Segment]:
    """Segments of a prompt of ``T + 1`` text chunks around ``T`` frames, ``room`` text tokens
    after it: frames with no text between them stay one ``Video`` (video mode), else each frame
    is its own one-frame grid; image mode lays out every frame as an ``Image``."""
    frames = len(chunk_lengths) - 1
    segs: list[Segment] = [Text(chunk_lengths[0])]
    run = 0
    for f in range(frames):
        run += 1
        if f < frames - 1 and chunk_lengths[f + 1] == 0:
            continue
        if frame_mode == "video":
            segs.append(Video(run, grid[0], grid[1]))
        else:
            segs.extend(Image(grid[0], grid[1]) for _ in range(run))
        run = 0
        if f < frames - 1:
            segs.append(Text(chunk_lengths[f + 1]))
    segs.append(Text(chunk_lengths[-1] + room))
    return segs
