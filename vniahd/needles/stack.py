"""Read the stack task's items: LongVideoBench-style records naming a clip and a question.

The released ``videorope_plus/v_ruler/data/lengthy_multimodal_stack.json`` holds five items
copied from LongVideoBench's validation set: ``video_path``, ``question``, ``candidates`` and
``correct_choice`` are used; ``id``, ``question_category`` and the rest are carried along. The
question the model sees is the released ``qa_template``
(``eval/eval_v_ruler_lengthy_multimodal_stack.py:214-226``)::

    Question: {question}
    Options:
    (A) {candidate 0}
    (B) {candidate 1}
    …

with trailing whitespace stripped and no answer instruction (the script comments it out, L197
and L228). The answer is the letter of the last candidate equal to
``candidates[correct_choice]``, as ``qa_template``'s loop (no ``break``) finds it.

The released script is always run with ``--clean_subtitles`` (``scripts/lengthy_multimodal_stack.sh``),
which drops every item whose question contains "subtitle" (L189-195; none of the five released
items does); so does this loader, keeping the other items' ids (``item{i}``, i = position in the
file) and saying how many it left out.

The release reads clips from ``--Eval_Video_root`` joined with ``video_path`` (L229); here the
clip folder is ``clips`` (``vniahd generate --clips DIR``), by default the JSON's folder, then
``videos/`` beside it. The LongVideoBench clips are not shipped with the release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError
from vniahd.files import sha256_bytes, sha256_file
from vniahd.needles.json_file import read_needle_json
from vniahd.needles.schema import LETTERS, TaskItem, TaskItemSet

__all__ = ["STACK_KEYS", "load_stack_items", "qa_template"]

#: The fields a stack item must have.
STACK_KEYS = ("video_path", "question", "candidates", "correct_choice")


def qa_template(question: str, candidates: list[str], correct_choice: int) -> tuple[str, str]:
    """``(prompt, answer letter)`` as the released ``qa_template`` builds them (module docstring)."""
    text = f"Question: {question}\nOptions:\n"
    right = candidates[correct_choice]
    # the released loop has no break: the *last* candidate equal to the right one names the answer
    answer_idx = max(i for i, c in enumerate(candidates) if c == right)
    for i, c in enumerate(candidates):
        text += f"({LETTERS[i]}) {c}\n"
    return text.rstrip(), LETTERS[answer_idx]


def _clip(where: str, folders: list[Path], name: str) -> Path:
    tried = [f / name for f in folders]
    for p in tried:
        if p.is_file():
            return p.resolve()
    raise VniahdError(
        f"{where}: clip {name!r} not found (looked in {', '.join(str(p.parent) for p in tried)}); "
        "pass the folder holding the clips with --clips DIR"
    )


def _item(where: str, i: int, e: Any, folders: list[Path]) -> TaskItem:
    if not isinstance(e, dict) or not set(STACK_KEYS) <= set(e):
        raise VniahdError(f"{where}: a stack item needs {', '.join(STACK_KEYS)}")
    cands, choice, question = e["candidates"], e["correct_choice"], e["question"]
    if not isinstance(question, str) or not question.strip():
        raise VniahdError(f"{where}: 'question' must be non-empty text, got {question!r}")
    if not isinstance(cands, list) or not 2 <= len(cands) <= 5 or not all(isinstance(c, str) for c in cands):
        raise VniahdError(
            f"{where}: 'candidates' must be a list of 2 to 5 texts (options A-E, as the released "
            f"scorer reads them), got {cands!r}"
        )
    if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < len(cands):
        raise VniahdError(
            f"{where}: 'correct_choice' must be the index of the right candidate (0 to {len(cands) - 1}), "
            f"got {choice!r}"
        )
    if not isinstance(e["video_path"], str) or not e["video_path"].strip():
        raise VniahdError(f"{where}: 'video_path' must name the clip file, got {e['video_path']!r}")
    prompt, answer = qa_template(question, cands, choice)
    video = _clip(where, folders, e["video_path"])
    return TaskItem(
        id=f"item{i}",
        images=(),
        needle_ids=(),
        prompt=prompt,
        question=question,
        answer=answer,
        options=tuple(cands),
        video=video,
        video_sha256=sha256_file(video),
        source_id=str(e.get("id", "")),
        category=str(e.get("question_category", "")),
    )


def _mentions_subtitles(e: Any) -> bool:
    """The released ``--clean_subtitles`` test: ``'subtitle' in item['question']`` (L189-195)."""
    return isinstance(e, dict) and isinstance(e.get("question"), str) and "subtitle" in e["question"]


def load_stack_items(path: str | Path, clips: str | Path | None = None) -> TaskItemSet:
    """The stack items of ``path`` (released format) with their clips found in ``clips`` (default:
    beside the JSON, then ``videos/`` beside it). The fingerprint covers the JSON and every clip."""
    path = Path(path)
    data, raw = read_needle_json(path)
    if not isinstance(data, list):
        raise VniahdError(f"{path}: expected a JSON list of LongVideoBench-style items")
    folders = [Path(clips)] if clips is not None else [path.parent, path.parent / "videos"]
    if clips is not None and not folders[0].is_dir():
        raise VniahdError(f"--clips {clips}: not a folder; pass the folder holding the items' clips")
    kept = [(i, e) for i, e in enumerate(data) if not _mentions_subtitles(e)]
    if len(kept) < len(data):
        from vniahd.notices import warn

        warn(
            f"{path}: {len(data) - len(kept)} item(s) whose question mentions subtitles left out, as the "
            "released script's --clean_subtitles does (the clips carry no subtitles here)"
        )
    if not kept:
        raise VniahdError(f"{path}: every item's question mentions subtitles; no item is left to ask")
    items = [_item(f"{path}: item {i}", i, e, folders) for i, e in kept]
    return TaskItemSet(
        "stack", tuple(items), sha256_bytes(raw, *(it.video_sha256 for it in items)), str(path)
    )
