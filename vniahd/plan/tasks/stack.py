"""The lengthy multimodal stack: a short video clip inside a long filler text, then a question.

The fifth V-RULER task (``videorope_plus/v_ruler/eval/eval_v_ruler_lengthy_multimodal_stack.py``,
grid in ``scripts/lengthy_multimodal_stack.sh``) works on raw video and text, not on a frame
haystack. Per (context length ``C``, item, depth ``d``) the released script builds one prompt:

- the text budget ``max_training_length = C − 32768`` (``.sh`` L43; the 32768 tokens are the
  clip's pixel budget, ``total_pixels = (C − max_training_length)·28·28``, eval L231);
- ``noise_text = 'This is noise text, please ignore it.'`` and ``noise_time =
  max_training_length // len(tokenizer.encode(noise_text))`` (L232-233; an argparse float, so
  float floor division) — the sentence count is measured in *the model's own* tokens;
- ``pre_noise = noise_text * floor(noise_time·(1 − d))`` before the clip and ``post_noise =
  noise_text * floor(noise_time·d)`` after it, repeats joined with no separator (L246-247), then
  the question.

So the released depth is the fraction of the filler *after* the clip: depth 0 puts the clip
right before the question, depth 1 right after the start of the user turn — the reverse of every
other needle-in-a-haystack depth. ``placement="depth"`` (vniahd's default) is the evident intent,
the fraction *before* the clip (``pre = floor(noise_time·d)``, ``post = floor(noise_time·(1 − d))``),
so that depth 0 is the start of the context as in V-NIAH; ``placement="reference"`` keeps the
released rule. The dataset stores the text budget; the evaluator turns it into sentence repeats
with the model's tokenizer (:func:`noise_repeats`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.plan.tasks.trial import ItemSpec, as_depth, check_grid

__all__ = [
    "NOISE_TEXT",
    "RELEASED_CONTEXT_LENGTHS",
    "RELEASED_VISUAL_TOKENS",
    "STACK_PLACEMENTS",
    "StackTrial",
    "noise_repeats",
    "plan_stack",
    "stack_sample_id",
]

#: The filler sentence (eval L232).
NOISE_TEXT = "This is noise text, please ignore it."
#: ``CONTEXT_LENGTHS`` of the released script: 224000 … 296000 tokens in steps of 8000 (``.sh`` L19).
RELEASED_CONTEXT_LENGTHS: tuple[int, ...] = tuple(range(224000, 296001, 8000))
#: Context minus text budget: ``max_training_length = context_length − 32768`` (``.sh`` L43).
RELEASED_VISUAL_TOKENS = 32768
#: ``depth`` (default): depth = fraction of the filler before the clip; ``reference``: the released
#: rule, depth = fraction after it.
STACK_PLACEMENTS = ("depth", "reference")


@dataclass(frozen=True)
class StackTrial:
    """One prompt of the stack task: ``context_tokens`` is the released grid's context length,
    ``text_tokens`` the filler budget (``context_tokens − visual_tokens``)."""

    sample_id: str
    context_tokens: int
    depth: Decimal
    item_id: str
    text_tokens: int
    placement: str
    task: str = "stack"


def stack_sample_id(context_tokens: int, depth: Decimal, item_id: str) -> str:
    return f"C{context_tokens}_D{depth.normalize():f}_{item_id}"


def plan_stack(
    lengths: Sequence[int],
    depths: Sequence[Decimal | str | float],
    items: Sequence[ItemSpec],
    placement: str = "depth",
    visual_tokens: int = RELEASED_VISUAL_TOKENS,
) -> list[StackTrial]:
    """One trial per (context length, item, depth), in the released loop order (a run per context
    length, items in file order, depths innermost; eval L207-240; the release shuffles the items
    with seed 233 to cut them into 4 chunks, which changes no prompt). ``lengths`` are context lengths
    in tokens; each must leave a text budget ``length − visual_tokens ≥ 0``."""
    if placement not in STACK_PLACEMENTS:
        raise UnknownNameError("stack placement", placement, list(STACK_PLACEMENTS))
    if visual_tokens < 0:
        raise VniahdError(f"--visual-tokens must be 0 or more, got {visual_tokens}")
    ds = [as_depth(d) for d in depths]
    check_grid("stack", list(lengths), ds, items)
    short = [n for n in lengths if n < visual_tokens]
    if short:
        raise VniahdError(
            f"context length(s) {short} are shorter than the {visual_tokens} tokens kept for the clip "
            "(the text budget is context − visual tokens); give longer --lengths or a smaller "
            "--visual-tokens"
        )
    return [
        StackTrial(
            sample_id=stack_sample_id(n, d, item_id),
            context_tokens=int(n),
            depth=d,
            item_id=item_id,
            text_tokens=int(n) - int(visual_tokens),
            placement=placement,
        )
        for n in lengths
        for item_id, _ in items
        for d in ds
    ]


def noise_repeats(text_tokens: int, sentence_tokens: int, depth: float, placement: str) -> tuple[int, int]:
    """``(before, after)``: how many filler sentences go before and after the clip.

    ``sentence_tokens`` is ``len(tokenizer.encode(NOISE_TEXT))`` for the model being scored. The
    arithmetic is the released script's, in the same floats: ``noise_time = float(budget) //
    sentence_tokens``, then ``floor(noise_time·(1 − d))`` and ``floor(noise_time·d)``, swapped for
    ``placement="depth"`` (module docstring)."""
    if placement not in STACK_PLACEMENTS:
        raise UnknownNameError("stack placement", placement, list(STACK_PLACEMENTS))
    if sentence_tokens < 1:
        raise VniahdError(
            f"the filler sentence {NOISE_TEXT!r} encodes to no tokens with this model's tokenizer, so "
            "no filler can be measured in its tokens; the stack task needs a model whose tokenizer "
            "spells the sentence"
        )
    noise_time = float(text_tokens) // sentence_tokens
    d = float(depth)
    share_rest = math.floor(noise_time * (1 - d))  # released: the repeats before the clip
    share_d = math.floor(noise_time * d)  # released: the repeats after it
    return (share_rest, share_d) if placement == "reference" else (share_d, share_rest)
