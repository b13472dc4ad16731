"""The sample builder: one dataset row → what the model sees, independent of the variant.

Per sample: the frame refs, their cached embeddings (gathered lazily from the host memmap, see
:class:`vniahd.evaluation.execution.prefix.PromptSource`), the prompt text around them (spliced, no vision
start/end tokens; with the ``native`` prompt layout the family's markers and timestamps between
the frames, :mod:`vniahd.evaluation.execution.prompt_layout`), the answer and option-letter token ids, and
the sequence segments ``[Text(before), Video(T, H, W) | T × Image(H, W), Text(after + room)]``
(native: one-frame grids where text separates the frames). A variant then only adds
position ids (:meth:`SampleBuilder.with_positions`).

A stack-task sample (:mod:`vniahd.plan.tasks.stack`) is its item's clip with filler text on both
sides: the filler sentence repeated before the clip (after the template's ``before``) and after
it (before the question), as many times as the sample's text budget allows in *this model's*
tokens (:meth:`SampleBuilder.filler`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vniahd.evaluation.execution.prefix import PromptSource
from vniahd.evaluation.execution.prompt_layout import (
    FramedPromptSource,
    PromptLayout,
    encode_chunks,
)
from vniahd.evaluation.scoring import SampleInputs
from vniahd.prompt_templates import PromptTemplate
from vniahd.rope.segments import build_segments, frame_segments

if TYPE_CHECKING:
    from vniahd.evaluation.contracts import BackendLike, DatasetLike
    from vniahd.evaluation.execution.embedding_cache import EmbeddingCache
    from vniahd.needles.schema import Needle
    from vniahd.rope import Segment, Variant


#: Position tables longer than this are not cached (a stack sample's ~260k positions are 6 MB of
#: float64 and no other sample shares its segments).
POSITIONS_CACHED_UP_TO = 65536


@dataclass
class Prepared:
    """One sample ready for scoring under any variant."""

    row: dict[str, Any]
    inputs: SampleInputs
    segments: list[Segment]
    num_frames: int
    source: PromptSource  # the prompt's rows, gathered lazily; its refs and token ids
    filler: tuple[int, int] | None = None  # stack task: filler sentences before and after the clip

    @property
    def sample_id(self) -> str:
        return str(self.row["sample_id"])

    @property
    def total_tokens(self) -> int:
        """Prompt plus teacher-forced answer tokens."""
        return self.inputs.prompt_len + len(self.inputs.answer_ids)


class SampleBuilder:
    """Builds :class:`Prepared` samples of ``dataset`` for ``backend`` (see module docstring)."""

    def __init__(
        self,
        dataset: DatasetLike,
        backend: BackendLike,
        cache: EmbeddingCache,
        template: PromptTemplate,
        max_new_tokens: int,
        layout: PromptLayout | None = None,
    ):
        self.layout = layout if layout is not None else PromptLayout("reference", backend.options.frame_mode)
        self.dataset = dataset
        self.backend = backend
        self.cache = cache
        self.template = template
        self.max_new_tokens = max_new_tokens
        self.tokenizer = backend.tokenizer
        self.grid = cache.grid
        self._positions: dict[tuple[Variant, tuple[Segment, ...]], torch.Tensor] = {}
        self.check_answers()
        self.sentence_tokens = self._sentence_tokens()

    def _sentence_tokens(self) -> int | None:
        """Tokens of the stack task's filler sentence for this model (None for other datasets)."""
        if self.dataset.config.get("task") != "stack":
            return None
        from vniahd.errors import VniahdError
        from vniahd.models.families import FAMILIES
        from vniahd.plan.tasks import noise_repeats

        # a template that opens the video itself (e.g. qwen-vision-tokens) would get the filler
        # appended inside the video markup; the markers are every family's video/image openers
        openers = {m for f in FAMILIES.values() for m in (f.markup.video_start, f.markup.image_before) if m}
        opened = sorted(m for m in openers if m in self.template.before)
        if opened:
            raise VniahdError(
                f"prompt template {self.template.name!r} opens the video in its text before the frames "
                f"({', '.join(opened)}), so the stack's filler would land inside the video markup; use the "
                "reference template, with --prompt native for the family's own markers around the clip"
            )
        n = len(self.tokenizer.encode(self.dataset.config["noise_text"]))
        noise_repeats(0, n, 0.0, "depth")  # refuses a sentence this tokenizer drops, before any work
        return n

    def filler(self, row: dict[str, Any]) -> tuple[int, int]:
        """Filler sentences before and after a stack sample's clip (the released arithmetic,
        :func:`vniahd.plan.tasks.noise_repeats`, with this model's sentence length)."""
        from vniahd.plan.tasks import noise_repeats

        assert self.sentence_tokens is not None
        placement = str(self.dataset.config.get("placement") or "depth")
        return noise_repeats(int(row["text_tokens"]), self.sentence_tokens, float(row["depth"]), placement)

    def check_answers(self) -> None:
        """Refuse a needle whose answer this model's tokenizer encodes to no tokens: with nothing
        to predict, "every answer token matched" would score it correct (one line, at start)."""
        used = set(self.dataset.samples["needle_id"])
        for nid, needle in sorted(self.dataset.needles.items()):
            if nid in used and not self.tokenizer.encode(needle.answer):
                from vniahd.errors import VniahdError

                raise VniahdError(
                    f"needle {nid!r} has answer {needle.answer!r}, which model {self.backend.spec}'s "
                    "tokenizer encodes to no tokens, so no answer could be scored; give the needle an "
                    "answer the model can spell, or options (multiple choice)"
                )

    def question(self, needle: Needle) -> str:
        from vniahd.needles import prompt_text

        return str(prompt_text(needle))

    def prepare(
        self,
        row: dict[str, Any],
        haystack: np.ndarray,
        images: Mapping[str, torch.Tensor],
        lazy: bool = False,
    ) -> Prepared:
        """Embeddings, token ids and segments of one sample. ``lazy``: the prompt embeddings stay a
        :class:`PromptSource` (gathered chunk by chunk), else they are one tensor on the device."""
        be = self.backend
        needle = self.dataset.needles[row["needle_id"]]
        refs = self.dataset.frame_sequence(row)
        before_text, question = self.template.before, self.question(needle)
        filler = None
        if self.sentence_tokens is not None:  # a stack dataset: every row is a stack sample
            filler = self.filler(row)
            sentence = str(self.dataset.config["noise_text"])
            before_text += sentence * filler[0]  # repeats joined with no separator, as released
            question = sentence * filler[1] + question
        question = self.template.render_after(question)
        answer_ids = self.tokenizer.encode(needle.answer)
        letters = letter_ids = None
        if needle.options:
            from vniahd.needles.schema import option_letter

            letters = [option_letter(i) for i in range(len(needle.options))]
            letter_ids = [self.tokenizer.encode(x) for x in letters]
        room = max([len(answer_ids), self.max_new_tokens] + [len(x) for x in letter_ids or []])
        source: PromptSource
        if self.layout.native:  # the family's markers (and timestamps) between the frames
            chunks = encode_chunks(self.layout, self.tokenizer, before_text, question, len(refs))
            source = FramedPromptSource(be, self.cache, refs, haystack, images, chunks)
            lengths = [len(c) for c in chunks]
            segments = frame_segments(lengths, self.grid, be.options.frame_mode, room)
        else:
            before = self.tokenizer.encode(before_text)
            after = self.tokenizer.encode(question)
            source = PromptSource(be, self.cache, refs, haystack, images, before, after)
            segments = build_segments(
                len(before), len(refs), self.grid, len(after) + room, be.options.frame_mode
            )
        inputs = SampleInputs(
            embeds=source if lazy else source.materialize(),
            positions=torch.empty(0),
            answer=needle.answer,
            answer_ids=answer_ids,
            letters=letters,
            letter_ids=letter_ids,
            # the stack's generated answers are read by the released scorer's rule
            answer_rule="lvb" if filler is not None else "option",
        )
        return Prepared(
            row=row,
            inputs=inputs,
            segments=segments,
            num_frames=len(refs),
            source=source,
            filler=filler,
        )

    def with_positions(self, prepared: Prepared, variant: Variant) -> SampleInputs:
        """The sample's inputs with ``variant``'s position ids [3, S] (shared, not to be modified
        in place: samples with the same segments — same frame count and text lengths — get the
        same tensor, computed once)."""
        key = (variant, tuple(prepared.segments))
        positions = self._positions.get(key)
        if positions is None:
            positions = variant.positions(prepared.segments)
            if positions.shape[-1] <= POSITIONS_CACHED_UP_TO:  # long prompts rarely repeat: not kept
                if len(self._positions) >= 256:
                    self._positions.clear()
                self._positions[key] = positions
        return dataclasses.replace(prepared.inputs, positions=positions)
