"""Demo items for the stack task: five short clips, each showing one coloured card, and a question.

The released stack items are LongVideoBench clips, which are not redistributable here. This module
cuts five 13-second clips from a video (the demo haystack, or the tiny model's held-out haystack in
``vniahd demo``), shows one demo card (:data:`vniahd.needles.demo.DEMO_NEEDLES`, objects and colours
the tiny model knows) for one second in each, and writes ``lengthy_multimodal_stack.json`` in the
released (LongVideoBench) format: "Which object is on the card coloured red?" with the card's
four options as ``candidates``. The clips play at 2 fps with every picture held for two frames,
so sampling them at 2 fps (the stack default) or 1 fps gives each picture once per group or frame.

Nothing is shipped: the clips are built into the cache from the source video on first use
(:func:`stack_demo_path`) and rebuilt when the source or this recipe changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vniahd.files import cache_dir, sha256_file, sha256_json, write_json_atomic, write_text_atomic
from vniahd.needles.demo import DEMO_NEEDLES, DEMO_SIZE, question_for

__all__ = ["CARD_AT", "CLIP_PICTURES", "build_stack_demo", "stack_demo_path"]

CLIP_PICTURES = 12  # source pictures per clip; the card makes 13
#: Where the card goes in each clip (0 = first picture): start, middle and end all occur.
CARD_AT = (0, 6, 12, 3, 9)
CLIP_FPS = 2.0
RECIPE_VERSION = 2  # 2: clips written bit-exact (media/export.py)


def _recipe(source_sha: str) -> dict[str, Any]:
    return {
        "version": RECIPE_VERSION,
        "source_sha256": source_sha,
        "pictures": CLIP_PICTURES,
        "card_at": list(CARD_AT),
        "fps": CLIP_FPS,
        "size": list(DEMO_SIZE),
        "cards": [n.id for n in DEMO_NEEDLES[: len(CARD_AT)]],
    }


def _items() -> list[dict[str, Any]]:
    """The JSON items, LongVideoBench's fields in its order."""
    out = []
    for i, d in enumerate(DEMO_NEEDLES[: len(CARD_AT)]):
        out.append(
            {
                "video_id": f"stackdemo{i}",
                "question": question_for(d.colour),
                "candidates": list(d.options),
                "correct_choice": "ABCD".index(d.answer),
                "question_category": "demo",
                "id": f"stackdemo{i}_0",
                "video_path": f"stackdemo{i}.mp4",
                "duration": (CLIP_PICTURES + 1) * 2 / CLIP_FPS,
            }
        )
    return out


def build_stack_demo(out_dir: str | Path, source: str | Path) -> Path:
    """Write the clips and ``lengthy_multimodal_stack.json`` into ``out_dir``; returns the JSON."""
    from vniahd.media.export import write_mp4
    from vniahd.media.readers import read_frames
    from vniahd.needles.cards import render_card

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(CARD_AT)
    pictures = read_frames(source, num_frames=n * CLIP_PICTURES, size=DEMO_SIZE)
    for i, (d, at) in enumerate(zip(DEMO_NEEDLES, CARD_AT)):
        card = np.asarray(render_card(d.object, d.colour, DEMO_SIZE).convert("RGB"))
        clip = list(pictures[i * CLIP_PICTURES : (i + 1) * CLIP_PICTURES])
        clip.insert(at, card)
        held = np.repeat(np.stack(clip), 2, axis=0)  # each picture for two frames at 2 fps
        write_mp4(held, out / f"stackdemo{i}.mp4", CLIP_FPS)
    path = out / "lengthy_multimodal_stack.json"
    write_text_atomic(path, json.dumps(_items(), indent=4) + "\n")
    return path


def stack_demo_path(source: str | Path) -> Path:
    """The demo items built from ``source`` in the cache (built on first use, reused after)."""
    source_sha = sha256_file(source)
    recipe = _recipe(source_sha)
    folder = cache_dir("needles", "stack-demo", sha256_json(recipe)[:16])
    done = folder / "build.json"
    path = folder / "lengthy_multimodal_stack.json"
    if done.is_file() and path.is_file():
        try:
            if json.loads(done.read_text()).get("recipe") == recipe:
                return path
        except ValueError:
            pass
    build_stack_demo(folder, source)
    write_json_atomic(done, {"recipe": recipe, "what": "vniahd stack-task demo clips (see stack_demo.py)"})
    return path
