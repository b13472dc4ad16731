"""``vniahd train-tiny --verify``: retrain a shipped tiny model here and compare.

Verdict rule:

- **Same machine facts** (torch, transformers, CPU vector ISA, threads — :data:`FLOAT_FACTS`):
  training is bitwise deterministic there, so the retrained weights, rounded to float16 as shipped,
  must equal the shipped file bit for bit. Anything else is a reproducibility defect: fail.
- **Other machine facts**: bit equality is not expected (other kernels round differently and
  2,000 steps amplify it). Say which facts differ, how far the weights are, and pass when the
  retrained model meets the acceptance level at the training length
  (:data:`vniahd.training.acceptance.THRESHOLD` on V-NIAH and V-NIAH-D).

The training-length accuracy of both the shipped and the retrained model is measured on the same
held-out datasets in every case, so the printout shows how far apart they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vniahd.errors import VniahdError


@dataclass
class Verification:
    variant: str
    seed: int
    shipped_file: str
    facts_differences: list[str]
    distance: dict[str, Any]
    accuracy_shipped: dict[str, float]
    accuracy_retrained: dict[str, float]
    passed: bool
    reason: str
    retrained_checkpoint: str = ""

    def lines(self) -> list[str]:
        d = self.distance
        out = [
            f"shipped:   {self.shipped_file}",
            f"retrained: {self.retrained_checkpoint}",
            "machine:   "
            + (
                "same float-shaping facts as the shipped checkpoint (torch, transformers, CPU ISA, threads)"
                if not self.facts_differences
                else "differs from the shipped checkpoint's — " + "; ".join(self.facts_differences)
            ),
            f"weights:   {'bit-for-bit equal' if d['bitwise_equal'] else 'differ'} after float16 rounding "
            f"({d['tensors_differing']}/{d['tensors']} tensors, {d['elements_differing']}/{d['elements']} "
            f"values differ; max |Δ| {d['max_abs_difference']:.3g})",
        ]
        for bench in self.accuracy_shipped:
            a, b = self.accuracy_shipped[bench], self.accuracy_retrained[bench]
            out.append(
                f"{bench:<9} accuracy at the training length: shipped {a:.3f}, "
                f"retrained {b:.3f} (Δ {b - a:+.3f})"
            )
        out.append(f"{'PASS' if self.passed else 'FAIL'}: {self.reason}")
        return out


def verify(
    variant_name: str,
    seed: int,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Verification:
    """Retrain the shipped checkpoint of ``variant_name`` / ``seed`` here and compare (module doc)."""
    from vniahd.models.tiny.recipe import Recipe
    from vniahd.models.tiny.shipped import find_shipped
    from vniahd.rope import parse_variant

    variant = parse_variant(variant_name)
    recipe = Recipe().with_train(seed=seed)
    shipped = find_shipped(recipe.checkpoint_key(variant))
    if shipped is None:
        raise VniahdError(
            f"no shipped tiny model for variant {variant.name!r}, seed {seed} with the default recipe; "
            "'vniahd train-tiny --list-shipped' lists what is shipped"
        )
    import torch

    # The thread count is a choice, not a property of the machine: train with the shipped one
    # (when the machine has that many cores) so that equal hardware can give equal bits.
    threads_before = torch.get_num_threads()
    wanted = int(shipped.entry.get("machine", {}).get("threads") or threads_before)
    if wanted <= (os.cpu_count() or 1):
        torch.set_num_threads(wanted)
    try:
        return _verify(shipped, recipe, variant, seed, progress=progress, log=log)
    finally:
        torch.set_num_threads(threads_before)


def _verify(
    shipped, recipe, variant, seed: int, *, progress: bool, log: Callable[[str], None]
) -> Verification:
    import shutil

    from vniahd.models.base import BackendOptions
    from vniahd.models.tiny.backend import TinyBackend
    from vniahd.models.tiny.checkpoints import load_checkpoint
    from vniahd.models.tiny.recipe import TrainingMaterial, train_and_save
    from vniahd.models.tiny.shipped import facts_differences, machine_facts, weight_distance
    from vniahd.training.acceptance import (
        THRESHOLD,
        acceptable,
        training_length_accuracy,
        training_length_datasets,
    )

    here = machine_facts()
    diffs = facts_differences(shipped.entry.get("machine", {}), here)
    material = TrainingMaterial(recipe, progress=progress)
    path = recipe.checkpoint_path(variant)
    if path.exists():  # --verify always retrains: an old local checkpoint proves nothing
        shutil.rmtree(path)
    log(
        f"retraining {variant.name} seed {seed} ({recipe.train.steps} steps) "
        f"to compare with {shipped.path.name}"
    )
    train_and_save(recipe, variant, material=material, progress=progress, log=log)
    retrained, *_ = load_checkpoint(path)
    distance = weight_distance(retrained, shipped)

    datasets = training_length_datasets(recipe, material, progress=progress)
    spec = f"tiny?seed={seed}"
    acc: dict[str, dict[str, float]] = {}
    for weights in ("shipped", "local"):
        backend = TinyBackend(
            f"{spec}&weights={weights}", recipe, BackendOptions(), weights=weights, progress=progress
        )
        acc[weights] = training_length_accuracy(backend, variant, datasets, progress=progress)
    if not diffs:
        passed = bool(distance["bitwise_equal"])
        reason = (
            "retrained bit for bit on a machine with the shipped checkpoint's facts"
            if passed
            else "same machine facts but different weights: training is not reproducible here "
            "(a defect; please report it with this output)"
        )
    else:
        passed = acceptable(acc["local"])
        reason = (
            f"other machine facts, so bits may differ; the retrained model "
            f"{'meets' if passed else 'misses'} the acceptance level ≥ {THRESHOLD:.2f} at the training length"
        )
    return Verification(
        variant=variant.name,
        seed=seed,
        shipped_file=str(shipped.path),
        facts_differences=diffs,
        distance=distance,
        accuracy_shipped=acc["shipped"],
        accuracy_retrained=acc["local"],
        passed=passed,
        reason=reason,
        retrained_checkpoint=str(path),
    )


__all__ = ["Verification", "verify"]
