"""The tiny model's acceptance check: held-out accuracy at the training length (16 frames).

A trained tiny model is acceptable when it reaches :data:`THRESHOLD` on V-NIAH and on V-NIAH-D at
its training length, averaged over depths. Held out: the haystack frames (the evaluation haystack is
the held-out portion of every clip) and the needle images (canonical demo cards; training saw only
augmented renders).

V-NIAH-D at the training length: with the tiny model's period (≈63 frames) no distractor fits in a
16-frame haystack, so the reference schedule would place none and the check would repeat V-NIAH.
The check therefore uses the reference schedule with a period of 6 frames, which puts one
distractor beside the needle in every sample at every depth. (The demo reports V-NIAH-D at the
model's own period from 64 frames up.)

Used by ``vniahd train-tiny --verify`` (retrained vs shipped weights) and ``make tiny-acceptance``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vniahd.demo import DATASET_SEED, ensure_dataset, evaluate_variant, heldout_haystack
from vniahd.files import cache_dir
from vniahd.prompt_templates import get_template
from vniahd.records import read_results

if TYPE_CHECKING:
    from vniahd.dataset import Dataset
    from vniahd.models.tiny.backend import TinyBackend
    from vniahd.models.tiny.recipe import Recipe, TrainingMaterial

THRESHOLD = 0.90
DEPTHS = "0:1:0.25"
REPEATS = 9  # × 6 demo needles × 5 depths = 270 samples per benchmark
DISTRACTOR_PERIOD = "6"


def training_length_datasets(
    recipe: Recipe, material: TrainingMaterial, progress: bool = False
) -> dict[str, Dataset]:
    """``{"V-NIAH": …, "V-NIAH-D": …}`` at the recipe's training length (cached datasets)."""

    heldout = heldout_haystack(recipe, material)
    root = cache_dir("tiny", "acceptance-datasets")
    common: dict[str, Any] = dict(
        haystack=heldout,
        lengths=str(recipe.train.length),
        depths=DEPTHS,
        repeats=REPEATS,
        seed=DATASET_SEED,
        progress=progress,
    )
    return {
        "V-NIAH": ensure_dataset(root / "vniah", schedule="none", period=DISTRACTOR_PERIOD, **common),
        "V-NIAH-D": ensure_dataset(
            root / "vniahd-p6", schedule="reference", period=DISTRACTOR_PERIOD, **common
        ),
    }


def training_length_accuracy(
    backend: TinyBackend, variant, datasets: dict[str, Dataset], progress: bool = False
) -> dict[str, float]:
    """Per benchmark: mean over depths of the per-depth accuracy of ``backend`` on ``variant``."""
    template = get_template(backend.recipe.train.prompt.template)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vniahd-acceptance-") as tmp:
        for bench, ds in datasets.items():
            run_dir = Path(tmp) / bench
            evaluate_variant(
                ds, backend, variant, run_dir, scoring="reference", template=template, progress=progress
            )
            by_depth: dict[float, list[bool]] = {}
            for r in read_results(run_dir):
                if r["variant"] == variant.name:
                    by_depth.setdefault(float(r["depth"]), []).append(bool(r["correct"]))
            per_depth = [sum(v) / len(v) for v in by_depth.values()]
            out[bench] = sum(per_depth) / len(per_depth)
    return out


def acceptable(accuracy: dict[str, float]) -> bool:
    return all(a >= THRESHOLD for a in accuracy.values())


__all__ = ["THRESHOLD", "acceptable", "training_length_accuracy", "training_length_datasets"]
