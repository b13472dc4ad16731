"""Read the released V-RULER needle files as they are (``videorope_plus/v_ruler/data/*.json``).

Every file is a JSON list of items with ``path``, ``prompt`` and ``answer``; ``path`` differs:

- ``multi_key_multi_value.json``: a *string* holding a Python list of image names, which the
  released code ``eval``\\ s (``eval_v_ruler_multi_key_multi_value.py:428-429``); here it is parsed
  with :func:`ast.literal_eval`, which accepts literals only.
- ``counting.json`` / ``ordering.json``: a real list, possibly empty (the bare haystack); only the
  file name of each entry counts, ``p.split('/')[-1]`` (``eval_v_ruler_counting.py:420-421``).
- ``v_niah_d.json``: one image name plus ``interrupt_path``, the distractor
  (``eval_v_ruler_interrupt.py:424-425``).

The released code looks embeddings up by file name in one flat directory, so images are looked up
by file name: beside the JSON file, then in ``images/`` beside it. A needle's id is the file name
before its first dot, the released embedding's name (``produce_needle_embedding_by_name.py:156``).
Options are parsed out of the verbatim prompt as for the reference V-NIAH-D format.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from vniahd.errors import UnknownNameError, VniahdError
from vniahd.files import sha256_bytes
from vniahd.needles.json_file import read_needle_json
from vniahd.needles.prompts import prompt_options
from vniahd.needles.schema import Needle, NeedleSet, TaskItem, TaskItemSet

__all__ = ["TASK_FILES", "interrupt_needle_set", "load_task_items", "needle_id_of", "parse_path_list"]

#: The released needle file of each task (``videorope_plus/v_ruler/data/``).
TASK_FILES = {
    "niah": "v_niah_d.json",
    "multi-key": "multi_key_multi_value.json",
    "counting": "counting.json",
    "ordering": "ordering.json",
    "stack": "lengthy_multimodal_stack.json",
}


def needle_id_of(name: str) -> str:
    """The id of an image entry: its file name before the first dot (``a/b.c.png`` → ``b``)."""
    return name.split("/")[-1].split(".")[0]


def parse_path_list(where: str, value: Any) -> list[str]:
    """A multi-key ``path``: a string holding a Python list of image names, parsed without ``eval``."""
    if not isinstance(value, str):
        raise VniahdError(
            f"{where}: 'path' must be a string holding a list, like \"['a.png', 'b.png']\", "
            f"got {type(value).__name__}"
        )
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise VniahdError(
            f"{where}: 'path' {value!r} is not a Python list of image names; write it like "
            "\"['a.png', 'b.png']\""
        ) from None
    if not isinstance(parsed, (list, tuple)) or not parsed:
        raise VniahdError(
            f"{where}: 'path' {value!r} must hold a non-empty list of image names, "
            "like \"['a.png', 'b.png']\""
        )
    return _names(where, list(parsed))


def _names(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p.strip() for p in value):
        raise VniahdError(f"{where}: 'path' must be a list of image names (non-empty strings), got {value!r}")
    return value


def _image(where: str, base: Path, entry: str) -> Path:
    name = entry.split("/")[-1]
    candidates = [base / name, base / "images" / name]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise VniahdError(
        f"{where}: image {entry!r} not found (looked for {candidates[0]} and {candidates[1]}); "
        "put it beside the JSON file or in images/ beside it (looked up by file name)"
    )


def _text(where: str, e: dict, key: str) -> str:
    value = e[key]
    if key == "answer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise VniahdError(f"{where}: empty or non-text {key!r} ({value!r}); give the {key} as text")
    return value


def has_interrupt_paths(data: Any) -> bool:
    """Whether a reference-format list is V-RULER's ``v_niah_d.json`` shape: every item names its
    own distractor in ``interrupt_path``."""
    return bool(data) and all(isinstance(e, dict) and "interrupt_path" in e for e in data)


def interrupt_needle_set(path: Path) -> NeedleSet:
    """``v_niah_d.json`` as a needle set: one needle per item, named by its image, with the item's
    ``interrupt_path`` image as its distractor."""
    items = load_task_items(path, "niah")
    needles = tuple(
        Needle(
            id=it.needle_ids[0],
            image=it.images[0],
            question=it.question,
            answer=it.answer,
            options=it.options,
            distractors=it.distractors,
            prompt=it.prompt,
        )
        for it in items
    )
    return NeedleSet(needles, items.fingerprint, items.source, "reference", name=path.stem)


def _infer_task(path: Path) -> str:
    for task, name in TASK_FILES.items():
        if path.name == name:
            return task
    raise VniahdError(
        f"{path}: cannot tell the task from the file name; pass the task "
        f"({', '.join(TASK_FILES)}) or use the released name ({', '.join(TASK_FILES.values())})"
    )


def load_task_items(
    path: str | Path, task: str | None = None, clips: str | Path | None = None
) -> TaskItemSet:
    """Load a released V-RULER needle file for ``task`` (default: from the released file name);
    ``clips``: the stack task's clip folder (:func:`vniahd.needles.stack.load_stack_items`)."""
    path = Path(path)
    if task is None:
        task = _infer_task(path)
    elif task not in TASK_FILES:
        raise UnknownNameError("task", task, list(TASK_FILES))
    if task == "stack":
        from vniahd.needles.stack import load_stack_items

        return load_stack_items(path, clips)
    if clips is not None:
        raise VniahdError(f"--clips is for the stack task's video clips; the {task} task reads images")
    data, raw = read_needle_json(path)
    if not isinstance(data, list):
        raise VniahdError(f"{path}: expected a JSON list of {{path, prompt, answer}} items")
    keys = ("path", "interrupt_path", "prompt", "answer") if task == "niah" else ("path", "prompt", "answer")
    items, blobs = [], [raw]
    for i, e in enumerate(data):
        where = f"{path}: item {i}"
        if not isinstance(e, dict) or not set(keys) <= set(e):
            raise VniahdError(f"{where}: a {task} item needs {', '.join(keys)}")
        prompt, answer = _text(where, e, "prompt"), _text(where, e, "answer").strip()
        question, options = prompt_options(where, prompt, answer)
        if task == "multi-key":
            names = parse_path_list(where, e["path"])
        elif task == "niah":
            names = _names(where, [e["path"]])
        else:
            names = _names(where, e["path"])
        images = tuple(_image(where, path.parent, p) for p in names)
        dnames = _names(where, [e["interrupt_path"]]) if task == "niah" else []
        distractors = tuple(_image(where, path.parent, p) for p in dnames)
        items.append(
            TaskItem(
                id=f"item{i}",
                images=images,
                needle_ids=tuple(needle_id_of(p) for p in names),
                prompt=prompt,
                question=question,
                answer=answer,
                options=options,
                distractors=distractors,
                distractor_ids=tuple(needle_id_of(p) for p in dnames),
            )
        )
        blobs += [p.read_bytes() for p in images + distractors]
    return TaskItemSet(task, tuple(items), sha256_bytes(*blobs), str(path))
