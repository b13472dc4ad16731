"""Training episodes: short haystacks with a needle card (and half the time a distractor card).

One episode mirrors one evaluation sample, built with the generator's planner functions so slots
mean the same thing at training and evaluation time:

- ``n`` = training length (16) haystack frames from a random window of the *training* split;
- a needle card of a training (object, colour) pair, inserted before haystack frame ``q`` drawn
  uniformly in ``0..n`` (:func:`vniahd.plan.insert_slots`);
- four options: the needle's object and three other objects, shuffled; the answer is the letter;
- with probability ``distractor_prob`` a distractor card showing a *wrong option's* object on a card
  of *another*, non-confusable colour (as in the demo needle set), placed by the planner's
  ``reference`` schedule
  at a spacing drawn uniformly among those that fit in the window (so it can land anywhere);
- the question is the needle set's wording (:func:`vniahd.needles.demo.question_for`) composed by
  :func:`vniahd.needles.prompt_text`, exactly as the evaluator composes it for the demo needles.

Everything is drawn from ``numpy.random.default_rng([seed, step])``: batch ``step`` is the same
whichever variant trains on it, and whether or not earlier batches were drawn.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vniahd.models.tiny.vocab import SPECIALS, split_words
from vniahd.plan import get_schedule, insert_slots
from vniahd.prompt_templates import BUILTIN_TEMPLATES
from vniahd.training.data import TrainingData

LETTERS = "ABCD"
NUM_OPTIONS = 4
#: Colour groups a frozen ImageNet CNN pooled to 2×2 tells apart poorly (a linear probe on the
#: features confuses purple/pink and blue/cyan most). The demo needle set never pairs a needle
#: with a distractor from its own group (vniahd.needles.demo), and neither do training episodes.
CONFUSABLE_COLOURS: tuple[frozenset[str], ...] = (
    frozenset({"red", "pink", "purple"}),
    frozenset({"blue", "cyan"}),
)


def confusable(a: str, b: str) -> bool:
    return a == b or any(a in g and b in g for g in CONFUSABLE_COLOURS)


@dataclass(frozen=True)
class Episode:
    """Frame refs in final order (``("h", row)`` haystack-feature row, ``("c", row)`` card row),
    the user-turn text and the answer letter."""

    frames: tuple[tuple[str, int], ...]
    question: str
    answer: str
    needle_slot: int
    distractor_slots: tuple[int, ...]


def compose_question(colour: str, options: list[str] | None, answer: str, instruction: bool) -> str:
    """The demo needle set's prompt for a card of ``colour`` (same code path as evaluation);
    ``options=None`` gives the short-answer form of the same question."""
    from vniahd.needles import Needle, prompt_text
    from vniahd.needles.demo import question_for

    needle = Needle(
        id="train",
        image=Path("train.png"),
        question=question_for(colour),
        answer=answer,
        options=tuple(options) if options is not None else None,
    )
    return prompt_text(needle, instruction=instruction)


def order_frames(
    n: int,
    offset: int,
    haystack_len: int,
    needle_slot: int,
    distractor_slots: list[int],
    needle_ref,
    distractor_refs,
) -> list:
    """Frame refs in final order, by the dataset reader's own rule
    (:func:`vniahd.dataset.frame_refs`): inserted slots show their card, the other slots read
    training-haystack row ``(offset + i) mod M``. Returns ``("h", row)`` / card refs."""
    from vniahd.dataset.reader import frame_refs

    names = {"needle": needle_ref}
    names.update({f"d{k}": ref for k, ref in enumerate(distractor_refs)})
    inserted = {needle_slot: "needle", **{s: f"d{k}" for k, s in enumerate(distractor_slots)}}
    refs = frame_refs(n + 1 + len(distractor_slots), inserted, offset, haystack_len)
    return [("h", int(i)) if kind == "haystack" else names[i] for kind, i in refs]


class EpisodeSampler:
    """Deterministic episodes from :class:`TrainingData`."""

    def __init__(
        self,
        data: TrainingData,
        *,
        length: int = 16,
        min_length: int | None = None,
        distractor_prob: float = 0.5,
        short_answer_prob: float = 0.0,
        instruction: bool = True,
        seed: int = 0,
        total_steps: int | None = None,
        ramp: float = 0.5,
    ):
        self.data = data
        self.length = length
        self.min_length = length if min_length is None else min_length
        self.total_steps = total_steps
        self.ramp = ramp
        if not 1 <= self.min_length <= length:
            raise ValueError(f"min_length must be in 1..{length}, got {min_length}")
        self.distractor_prob = distractor_prob
        self.short_answer_prob = short_answer_prob
        self.instruction = instruction
        self.seed = seed
        self.objects = list(data.config.objects)
        self.colours = list(data.config.colours)
        self.by_pair = data.cards_by_pair()
        self.pairs = sorted(self.by_pair)
        self._questions: dict[tuple, str] = {}

    def _question(self, colour: str, options: tuple[str, ...] | None, answer: str) -> str:
        key = (colour, options, answer)
        if key not in self._questions:
            self._questions[key] = compose_question(
                colour, None if options is None else list(options), answer, self.instruction
            )
        return self._questions[key]

    def episode(self, rng: np.random.Generator, n: int | None = None) -> Episode:

        n = self.length if n is None else n
        obj, colour = self.pairs[rng.integers(len(self.pairs))]
        needle_ref = ("c", int(rng.choice(self.by_pair[(obj, colour)])))
        others = [o for o in self.objects if o != obj]
        options = [obj] + [others[i] for i in rng.choice(len(others), NUM_OPTIONS - 1, replace=False)]
        options = [options[i] for i in rng.permutation(NUM_OPTIONS)]
        answer = LETTERS[options.index(obj)]
        q = int(rng.integers(0, n + 1))
        positions: list[int] = []
        distractor_refs: list = []
        wrong = [o for o in options if o != obj]
        candidates = [
            (o, c)
            for o in wrong
            for c in self.colours
            if not confusable(c, colour) and (o, c) in self.by_pair
        ]
        # Spacings p for which the reference schedule places a distractor in this window.
        fits = [p for p in range(1, n + 1) if not (q - p <= 0 and q + p >= n)]
        if rng.random() < self.distractor_prob and candidates and fits:
            d_obj, d_col = candidates[rng.integers(len(candidates))]
            distractor_refs = [("c", int(rng.choice(self.by_pair[(d_obj, d_col)])))]
            p = fits[rng.integers(len(fits))]
            side = random.Random(int(rng.integers(1 << 62)))
            positions = get_schedule("reference").positions(n, q, p, side, None)
        needle_slot, dslots, _ = insert_slots(n, q, positions)
        offset = int(rng.integers(len(self.data.haystack)))
        frames = order_frames(
            n, offset, len(self.data.haystack), needle_slot, dslots, needle_ref, distractor_refs
        )
        if rng.random() < self.short_answer_prob:  # same question, no options: answer the word
            return Episode(tuple(frames), self._question(colour, None, obj), obj, needle_slot, tuple(dslots))
        return Episode(
            tuple(frames), self._question(colour, tuple(options), answer), answer, needle_slot, tuple(dslots)
        )

    def batch_length(self, step: int, rng: np.random.Generator) -> int:
        """Haystack length of batch ``step``: a curriculum from short to full haystacks.

        The upper end grows linearly from ``min_length`` to ``length`` over the first
        ``ramp`` fraction of ``total_steps``; the batch length is uniform in
        ``[max(min_length, upper // 2), upper]``. Why: at 16 frames only, the 2-layer model did not
        learn to tell the needle from the distractor in 800 steps (the 8 card tokens drown in 64
        haystack tokens); at 6 frames it did in 400, and the skill carries over to longer haystacks.
        """
        if self.total_steps is None or self.min_length == self.length:
            return self.length
        frac = min(1.0, step / max(1.0, self.ramp * self.total_steps))
        upper = int(round(self.min_length + (self.length - self.min_length) * frac))
        lower = max(self.min_length, upper // 2)
        return int(rng.integers(lower, upper + 1))

    def batch(self, step: int, size: int) -> list[Episode]:
        """Batch ``step``: one haystack length (:meth:`batch_length`), ``size`` episodes."""
        rng = np.random.default_rng([self.seed, step])
        n = self.batch_length(step, rng)
        return [self.episode(rng, n) for _ in range(size)]


def frame_features(data: TrainingData, episode: Episode) -> torch.Tensor:
    """[F, 4, 1320] features of an episode's frames, in order (the plain gather; training uses
    :func:`vniahd.training.train.collate`, which projects each distinct frame of a batch once)."""
    h = [r for k, r in episode.frames if k == "h"]
    idx_h = torch.tensor([r if k == "h" else -1 for k, r in episode.frames])
    idx_c = torch.tensor([r if k == "c" else -1 for k, r in episode.frames])
    out = torch.empty(len(episode.frames), *data.haystack.shape[1:])
    mh, mc = idx_h >= 0, idx_c >= 0
    if h:
        out[mh] = data.haystack[idx_h[mh]]
    out[mc] = data.cards[idx_c[mc]]
    return out


def vocabulary_words(objects: list[str], colours: list[str], fmt=None) -> list[str]:
    """The tiny model's keywords: the words of the needle questions (both the multiple-choice and
    the short-answer form, for every colour), the objects and the option letters — minus
    boilerplate, i.e. any word that also occurs in an answer instruction or a built-in prompt
    template (``the``, ``Answer``, ``system``…; built-ins only, so registering a template changes
    no checkpoint key). Everything else is dropped by the tokenizer."""
    from vniahd.needles.prompts import KNOWN_INSTRUCTIONS

    texts = []
    for c in colours:
        texts.append(compose_question(c, list(objects[:NUM_OPTIONS]), "A", instruction=False))
        texts.append(compose_question(c, None, objects[0], instruction=False))
    words = {w for t in texts for w in split_words(t) if w[0].isalnum()}
    words |= set(objects) | set(colours) | set(LETTERS)
    options = {f"{letter}. {o}" for letter in LETTERS for o in objects}  # how prompt_text lists them
    boiler = {
        w
        for t in (*KNOWN_INSTRUCTIONS, *(x for tp in BUILTIN_TEMPLATES for x in (tp.before, tp.after)))
        for w in split_words(t)
    }
    keep = (words - boiler) | set(objects) | set(colours) | set(LETTERS) | options
    return list(SPECIALS) + sorted(keep - set(SPECIALS))
