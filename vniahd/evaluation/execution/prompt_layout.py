"""Prompt layouts: how the frames sit among the prompt's text (``--prompt reference|native``).

- ``reference`` (default): the published V-NIAH-D protocol — the frame embeddings spliced
  between the template's ``before`` and ``after`` text, no vision markers
  (:class:`vniahd.evaluation.execution.prefix.PromptSource`; unchanged by this module).
- ``native``: the video written the way the model family's chat template and processor write it
  (:class:`vniahd.models.families.Markup`): Qwen2-VL / Qwen2.5-VL wrap the whole video in
  ``<|vision_start|>…<|vision_end|>``; Qwen3-VL / Qwen3.5 put ``<t seconds><|vision_start|>``
  before and ``<|vision_end|>`` after every temporal group; GLM-4.1V wraps the video in
  ``<|begin_of_video|>…<|end_of_video|>`` and every group in
  ``<|begin_of_image|>…<|end_of_image|>`` followed by its whole seconds. With ``--frame-mode
  image`` every frame is wrapped as the family wraps an image, without timestamps. The chat text
  around the video is still the prompt template's.

A native prompt is ``T + 1`` text chunks around the ``T`` frames: chunk 0 = template ``before`` +
the video's start + group 0's leading text; chunk f = group f−1's trailing text + group f's
leading text; chunk T = the last group's trailing text + the video's end + the template's
``after``. Each chunk is tokenised as one string, as the processor tokenises the whole prompt
(marker tokens split the text, so the pieces between them match). Chunks 1 … T−1 depend only on
the group index, so two samples sharing their first k frames share every row before frame k's
chunk: :class:`FramedPromptSource` keeps :class:`~vniahd.evaluation.execution.prefix.PromptSource`'s
prefix contract (``prefix_tokens(k)`` = rows determined by the first k frames).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vniahd.errors import VniahdError
from vniahd.evaluation.execution.prefix import PromptSource

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import BackendLike
    from vniahd.evaluation.execution.embedding_cache import EmbeddingCache
    from vniahd.models.families import Markup

PROMPT_LAYOUTS = ("reference", "native")


@dataclass
class PromptLayout:
    """A prompt layout bound to one model family and dataset (see the module docstring)."""

    name: str
    frame_mode: str = "video"
    markup: Markup | None = None
    family: str = ""
    fps: float | None = None
    frames_per_group: int = 1
    _middle: dict[int, list[int]] = field(default_factory=dict, repr=False)

    @property
    def native(self) -> bool:
        return self.name == "native"

    def texts(self, before: str, after: str, frames: int) -> list[str]:
        """The ``frames + 1`` text chunks around the frames (module docstring)."""
        if self.markup is None:
            return [before] + [""] * (frames - 1) + [after]
        m = self.markup
        if self.frame_mode == "image":
            lead, trail = [m.image_before] * frames, [m.image_after] * frames
            start = end = ""
        else:
            pairs = [m.frame_text(f, self.fps, self.frames_per_group) for f in range(frames)]
            lead, trail = [p[0] for p in pairs], [p[1] for p in pairs]
            start, end = m.video_start, m.video_end
        out = [before + start + lead[0]]
        out += [trail[f - 1] + lead[f] for f in range(1, frames)]
        out.append(trail[-1] + end + after)
        return out

    def text_per_frame(self, tokenizer: Any) -> int:
        """About how many text tokens sit between two frames (cost estimates; 0 for reference)."""
        if self.markup is None:
            return 0
        return len(tokenizer.encode(self.texts("", "", 3)[1]))

    def record(self) -> dict[str, Any]:
        """What run.json records about the layout (``prompt_layout``)."""
        out: dict[str, Any] = {"name": self.name}
        if self.markup is not None:
            out.update(family=self.family, markup=self.markup.to_dict())
        return out


def prompt_layout(name: str, backend: BackendLike, fps: float | None, frames_per_group: int) -> PromptLayout:
    """The layout ``name`` for ``backend`` (a family's markup for ``native``)."""
    if name not in PROMPT_LAYOUTS:
        raise VniahdError(
            f"unknown prompt layout {name!r}; use reference (frames spliced bare, the published "
            "protocol) or native (the model family's vision markers and timestamps)"
        )
    mode = backend.options.frame_mode
    if name == "reference":
        return PromptLayout("reference", frame_mode=mode)
    from vniahd.models.families import family_of

    fam = family_of(backend)
    layout = PromptLayout(
        "native",
        frame_mode=mode,
        markup=fam.markup,
        family=fam.name,
        fps=fps,
        frames_per_group=frames_per_group,
    )
    layout.texts("", "", 1)  # fail now (no fps for timestamps), not inside the run
    return layout


def encode_chunks(
    layout: PromptLayout, tokenizer: Any, before: str, after: str, frames: int
) -> list[list[int]]:
    """Token ids of the chunks; the ones between frames depend on the group index only, so they
    are encoded once per layout."""
    texts = layout.texts(before, after, frames)
    cache = layout._middle
    middle = []
    for f in range(1, frames):
        ids = cache.get(f)
        if ids is None:
            ids = cache[f] = tokenizer.encode(texts[f])
        middle.append(ids)
    return [tokenizer.encode(texts[0]), *middle, tokenizer.encode(texts[-1])] if frames else []


class FramedPromptSource(PromptSource):
    """A prompt ``chunk 0 | frame 0 | chunk 1 | … | frame T−1 | chunk T`` as lazily gathered rows
    (:class:`~vniahd.evaluation.execution.prefix.PromptSource` with text between the frames)."""

    def __init__(
        self,
        backend: BackendLike,
        cache: EmbeddingCache,
        refs: Sequence[tuple[str, Any]],
        haystack: np.ndarray,
        images: Mapping[str, torch.Tensor],
        chunks: Sequence[list[int]],
    ):
        if len(chunks) != len(refs) + 1:
            raise ValueError(f"{len(refs)} frames need {len(refs) + 1} text chunks, got {len(chunks)}")
        super().__init__(backend, cache, refs, haystack, images, list(chunks[0]), list(chunks[-1]))
        self.chunks = [list(c) for c in chunks]
        # pieces in row order: (start row, kind, index); text chunks of length 0 are skipped
        self._starts: list[int] = []
        self._pieces: list[tuple[str, int]] = []
        self.frame_starts: list[int] = []
        row = 0
        for k, chunk in enumerate(self.chunks):
            if chunk:
                self._starts.append(row)
                self._pieces.append(("text", k))
                row += len(chunk)
            if k < len(self.refs):
                self._starts.append(row)
                self._pieces.append(("frame", k))
                self.frame_starts.append(row)
                row += self.tpf
        self._len = row

    def __len__(self) -> int:
        return self._len

    def rows(self, a: int, b: int) -> torch.Tensor:
        """Embeddings of prompt rows ``[a, b)`` on the model device."""
        be = self.backend
        b = min(b, self._len)
        if a >= b:
            return torch.empty(0, be.row_width, dtype=be.dtype, device=be.device)
        i = bisect.bisect_right(self._starts, a) - 1
        spans: list[tuple[str, int, int, int]] = []  # (kind, index, lo, hi) within the piece
        while i < len(self._pieces) and self._starts[i] < b:
            kind, k = self._pieces[i]
            start = self._starts[i]
            size = len(self.chunks[k]) if kind == "text" else self.tpf
            lo, hi = max(a, start) - start, min(b, start + size) - start
            if lo < hi:
                spans.append((kind, k, lo, hi))
            i += 1
        text_ids = [t for kind, k, lo, hi in spans if kind == "text" for t in self.chunks[k][lo:hi]]
        text = be.embed_text(text_ids).to(be.dtype) if text_ids else None
        frame_ids = [k for kind, k, _, _ in spans if kind == "frame"]
        frames = None
        if frame_ids:
            f0, f1 = frame_ids[0], frame_ids[-1] + 1
            frames = self.cache.gather(self.refs[f0:f1], self.haystack, self.images).to(
                device=be.device, dtype=be.dtype
            )
        parts: list[torch.Tensor] = []
        t_off = 0
        for kind, k, lo, hi in spans:
            if kind == "text":
                assert text is not None
                parts.append(text[t_off : t_off + hi - lo])
                t_off += hi - lo
            else:
                assert frames is not None
                base = (k - frame_ids[0]) * self.tpf
                parts.append(frames[base + lo : base + hi])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def prefix_tokens(self, frames: int) -> int:
        """Rows fixed by the first ``frames`` frames (what :meth:`prefix_identity`, chunk 0 and
        those frames, determines): chunk 0 and, for ``frames`` ≥ 1, everything up to the end of
        frame ``frames − 1`` — not the chunk after it, which holds the question when that frame is
        a sample's last."""
        if frames <= 0:
            return len(self.chunks[0])
        return self.frame_starts[frames - 1] + self.tpf


def text_chunks(source: PromptSource) -> list[list[int]]:
    """The ``T + 1`` text chunks of any prompt source (the reference one has text only at the ends)."""
    if isinstance(source, FramedPromptSource):
        return [list(c) for c in source.chunks]
    return [list(source.before_ids)] + [[] for _ in range(len(source.refs) - 1)] + [list(source.after_ids)]
