"""Needle records: one image + question (+ options) + answer + distractor images.

A :class:`Needle` is format-neutral: the native JSON loader and the reference-format loader both
produce it (see :mod:`vniahd.needles.loaders`). Image paths are absolute once loaded.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError

LETTERS = string.ascii_uppercase
# Needle ids end up in sample ids and file names, so keep them file-name safe.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def option_letter(index: int) -> str:
    """0 → 'A', 1 → 'B', …"""
    return LETTERS[index]


@dataclass(frozen=True)
class Needle:
    """One needle.

    ``options`` is ``None`` for a short-answer needle; otherwise ``answer`` is an option letter.
    ``prompt`` holds a verbatim prompt (reference format) that :func:`prompt_text` returns as-is;
    ``None`` means the prompt is composed from ``question`` and ``options``. ``meta`` carries free
    extra fields (the demo set records the object and card colour there).
    """

    id: str
    image: Path
    question: str
    answer: str
    options: tuple[str, ...] | None = None
    distractors: tuple[Path, ...] = ()
    prompt: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_multiple_choice(self) -> bool:
        return self.options is not None

    @property
    def answer_text(self) -> str:
        """The option text behind the answer letter (the answer itself for short answers)."""
        if self.options is None:
            return self.answer
        return self.options[LETTERS.index(self.answer)]


def validate_answer(where: str, answer: str, options: tuple[str, ...] | None) -> None:
    """Multiple choice: the answer must be the letter of one of the options."""
    if options is None:
        if not answer.strip():
            raise VniahdError(f"{where}: empty answer; give the short answer text")
        return
    if len(options) < 2:
        raise VniahdError(
            f"{where}: {len(options)} option(s); give at least 2 options, or none for a short-answer needle"
        )
    if len(options) > len(LETTERS):
        raise VniahdError(
            f"{where}: {len(options)} options, but options are lettered A-Z, so at most "
            f"{len(LETTERS)}; drop {len(options) - len(LETTERS)} option(s)"
        )
    valid = LETTERS[: len(options)]
    if answer not in valid:
        raise VniahdError(
            f"{where}: answer {answer!r} is not among the options "
            f"{', '.join(valid)}; give the letter of the correct option"
        )


@dataclass(frozen=True)
class NeedleSet:
    """An ordered collection of needles with a content fingerprint.

    ``fingerprint`` is the SHA-256 over the needle file(s) bytes and every referenced image's bytes,
    in order (computed by the loader), so editing either changes it.
    """

    needles: tuple[Needle, ...]
    fingerprint: str
    source: str
    format: str  # "native" or "reference"
    name: str = ""
    distractor_source: str | None = None  # reference format: the parallel distractor file

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        for i, n in enumerate(self.needles):
            if not ID_PATTERN.match(n.id):
                raise VniahdError(
                    f"{self.source}: needle {i} (id {n.id!r}): ids may hold only "
                    "letters, digits, '_', '.', '-' and must start with a letter or digit"
                )
            if n.id in seen:
                raise VniahdError(
                    f"{self.source}: needle {i} (id {n.id!r}): duplicate id, already "
                    f"used by needle {seen[n.id]}; give every needle a unique id"
                )
            seen[n.id] = i
        asked: dict[tuple[Any, ...], Needle] = {}
        for n in self.needles:  # one picture, one question: one answer
            q = (Path(n.image), n.prompt or n.question, n.options)
            other = asked.setdefault(q, n)
            if other.answer != n.answer:
                raise VniahdError(
                    f"{self.source}: needles {other.id!r} and {n.id!r} ask the same question about "
                    f"the same image ({Path(n.image).name}) with different answers "
                    f"({other.answer!r} and {n.answer!r}); keep the right one"
                )
        if not self.needles:
            raise VniahdError(f"{self.source}: the needle set is empty; add at least one needle")

    def __iter__(self) -> Iterator[Needle]:
        return iter(self.needles)

    def __len__(self) -> int:
        return len(self.needles)

    @property
    def ids(self) -> list[str]:
        return [n.id for n in self.needles]

    def by_id(self) -> dict[str, Needle]:
        return {n.id: n for n in self.needles}


@dataclass(frozen=True)
class TaskItem:
    """One multi-image item (V-RULER): needle images in video order, one prompt, one answer.

    ``needle_ids[j]`` names ``images[j]`` (the file name before its first dot, as the released
    embeddings are named); an image may repeat (counting shows one picture twice). ``distractors``
    holds the V-NIAH-D item's ``interrupt_path`` image. ``options`` is ``None`` for a short answer.
    """

    id: str
    images: tuple[Path, ...]
    needle_ids: tuple[str, ...]
    prompt: str
    question: str
    answer: str
    options: tuple[str, ...] | None = None
    distractors: tuple[Path, ...] = ()
    distractor_ids: tuple[str, ...] = ()
    # the stack task (a clip in filler text): the item's clip and its SHA-256, and what the source
    # file calls it
    video: Path | None = None
    video_sha256: str = ""
    source_id: str = ""
    category: str = ""

    def __post_init__(self) -> None:
        if len(self.images) != len(self.needle_ids) or len(self.distractors) != len(self.distractor_ids):
            raise ValueError(f"item {self.id!r}: one id per image")

    @property
    def spec(self) -> tuple[str, tuple[str, ...]]:
        """``(id, needle_ids)``, what the task planner takes."""
        return self.id, self.needle_ids

    @property
    def answer_text(self) -> str:
        """The option text behind the answer letter (the answer itself for short answers)."""
        return self.answer if self.options is None else self.options[LETTERS.index(self.answer)]


@dataclass(frozen=True)
class TaskItemSet:
    """A task's items with a content fingerprint (SHA-256 over the JSON and every image, in order)."""

    task: str
    items: tuple[TaskItem, ...]
    fingerprint: str
    source: str

    def __post_init__(self) -> None:
        if not self.items:
            raise VniahdError(f"{self.source}: no items; add at least one")
        seen: dict[str, int] = {}
        image_of: dict[str, Path] = {}
        for i, it in enumerate(self.items):
            if it.id in seen:
                raise VniahdError(
                    f"{self.source}: items {seen[it.id]} and {i} share the id {it.id!r}; ids must be unique"
                )
            seen[it.id] = i
            for nid, img in zip(it.needle_ids + it.distractor_ids, it.images + it.distractors):
                if not ID_PATTERN.match(nid):
                    raise VniahdError(
                        f"{self.source}: item {i}: image {img.name!r} gives the id {nid!r}; rename the "
                        "file to start with a letter or digit and hold only letters, digits, '_', '.', '-'"
                    )
                other = image_of.setdefault(nid, img)
                if other != img:
                    raise VniahdError(
                        f"{self.source}: item {i}: images {other} and {img} share the id {nid!r} (the "
                        "name before the first dot); rename one of them"
                    )

    def __iter__(self) -> Iterator[TaskItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def specs(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every item's ``(id, needle_ids)``, for :func:`vniahd.plan.tasks.plan_task`."""
        return [it.spec for it in self.items]
