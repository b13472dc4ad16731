"""Small datasets and models for the evaluator tests (imported by tests/test_evaluate_*.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FRAME_SIZE = (56, 84)  # 2 × 3 merged Qwen2-VL tokens per frame (patch 14, merge 2)
TINY_SPEC = "random:qwen2-vl"


def write_png(arr: np.ndarray, path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def make_needle_set(root: Path, seed: int = 1):
    """Two needles: a 4-option multiple-choice one (answer B) and a short-answer one ("200")."""
    from vniahd.files import sha256_bytes
    from vniahd.needles import Needle, NeedleSet

    rng = np.random.default_rng(seed)
    imgs = [
        write_png(rng.integers(0, 256, (*FRAME_SIZE, 3), dtype=np.uint8), root / f"img{i}.png")
        for i in range(4)
    ]
    needles = (
        Needle(
            id="mc",
            image=imgs[0],
            question="Which object is shown?",
            answer="B",
            options=("cat", "coffee", "rocket", "horse"),
            distractors=(imgs[1],),
        ),
        Needle(id="short", image=imgs[2], question="How many dots?", answer="200", distractors=(imgs[3],)),
    )
    fp = sha256_bytes(*[p.read_bytes() for p in imgs])
    return NeedleSet(needles=needles, fingerprint=fp, source=str(root), format="native", name="test")


def make_dataset(
    out: Path,
    *,
    lengths=(6, 10),
    depths=("0", "0.5", "1"),
    haystack_frames=12,
    schedule="reference",
    period=3,
    seed=7,
    fps=1.0,
):
    """A real dataset directory written with the generator's writer (synthetic frames)."""
    from vniahd.dataset import write_dataset
    from vniahd.plan import plan_samples

    out = Path(out)
    nset = make_needle_set(out.parent / (out.name + "-needles"))
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (haystack_frames, *FRAME_SIZE, 3), dtype=np.uint8)
    samples = plan_samples(
        lengths=list(lengths),
        depths=list(depths),
        needles=[(n.id, len(n.distractors)) for n in nset],
        schedule=schedule,
        period=period,
        seed=seed,
        haystack_frames=haystack_frames,
    )
    config = {
        "lengths": list(lengths),
        "depths": list(depths),
        "schedule": schedule,
        "period": {"frames": period},
        "seed": seed,
        "fps": fps,
        "size": list(FRAME_SIZE),
    }
    return write_dataset(
        out,
        haystack_frames=frames,
        haystack_meta={"source": "synthetic noise", "fps": fps},
        needle_set=nset,
        samples=samples,
        config=config,
        progress=False,
    )
