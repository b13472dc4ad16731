"""How the tiny model's sequences are laid out — shared by training and the ``tiny`` backend.

A sequence is ``before`` text, the frames' visual tokens (a 2×2 grid per frame), ``after`` text
(the template around the user-turn question), then the answer tokens. Token ids come from the
evaluator's prompt templates (:mod:`vniahd.prompt_templates`) and positions from the RoPE variant
(``Variant.positions([Text(nb), Video(F, 2, 2), Text(na)])``), exactly as the evaluator builds them
for real checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import torch

from vniahd.prompt_templates import get_template
from vniahd.rope.segments import build_segments

#: The tiny model is trained with the evaluator's defaults — the ``reference`` chat template of the
#: V-NIAH-D protocol and the needle's answer instruction — so that ``vniahd eval --model tiny``
#: needs no extra flags and sees exactly the prompts it was trained on.
DEFAULT_TEMPLATE = "reference"


@dataclass(frozen=True)
class PromptFormat:
    """Template name + whether the needle's answer instruction is appended to the question."""

    template: str = DEFAULT_TEMPLATE
    instruction: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def template_obj(self):

        return get_template(self.template)

    def texts(self) -> tuple[str, str]:
        t = self.template_obj()
        return t.before, t.after


@dataclass(frozen=True)
class Pieces:
    before: tuple[int, ...]
    after: tuple[int, ...]
    answer: tuple[int, ...]


def encode_pieces(tokenizer, fmt: PromptFormat, question: str, answer: str) -> Pieces:
    t = fmt.template_obj()
    return Pieces(
        tuple(tokenizer.encode(t.before)) if t.before else (),
        tuple(tokenizer.encode(t.render_after(question))),
        tuple(tokenizer.encode(answer)),
    )


@lru_cache(maxsize=4096)
def _positions(variant, nb: int, frames: int, grid: tuple[int, int], na: int) -> torch.Tensor:
    return variant.positions(build_segments(nb, frames, grid, na, "video")).to(torch.float32)


def positions(variant, nb: int, frames: int, grid: tuple[int, int], na: int) -> torch.Tensor:
    """[3, nb + frames·H·W + na] position ids of one sequence (cached per shape)."""
    return _positions(variant, nb, frames, tuple(grid), na)
