"""Maintainer tool: train (or reuse) the tiny checkpoints and write them into vniahd/models/tiny/weights/.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/ship_tiny_models.py --seeds 0,1,2

For each variant and seed it loads the local checkpoint of the default recipe (training it when
missing, with the thread count given by OMP_NUM_THREADS), rounds it to float16, writes
``<variant>-seed<S>.safetensors`` and its manifest entry (key, configs, sha256, command, the machine
facts that shape its floats), then measures the shipped model's held-out accuracy at the training
length and records it too. Commit the folder afterwards; keep it under ~55 MB, no file over 4 MB.
"""

from __future__ import annotations

import argparse
import json


def main() -> int:
    from vniahd.models.base import BackendOptions
    from vniahd.models.tiny.backend import TinyBackend
    from vniahd.models.tiny.recipe import Recipe, TrainingMaterial, ensure_model, train_command
    from vniahd.models.tiny.shipped import (
        WEIGHTS_DIR,
        find_shipped,
        machine_facts,
        read_manifest,
        write_shipped,
    )
    from vniahd.rope import get_variant
    from vniahd.training.acceptance import training_length_accuracy, training_length_datasets

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="vanilla,tad,mrope,videorope")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()

    base = Recipe()
    material = TrainingMaterial(base, progress=False)
    datasets = training_length_datasets(base, material)
    for seed in (int(s) for s in args.seeds.split(",")):
        recipe = base.with_train(seed=seed)
        material.recipe = recipe
        for name in args.variants.split(","):
            v = get_variant(name)
            model, path, meta = ensure_model(
                recipe, v, weights="local", train_if_missing=True, material=material, progress=False
            )
            # Checkpoints trained before the metadata carried the machine facts were trained here,
            # by this interpreter's thread count (OMP_NUM_THREADS).
            meta.setdefault("machine", machine_facts())
            entry = write_shipped(model, v, meta, recipe, command=train_command(v.name, recipe.train))
            shipped = find_shipped(entry["checkpoint_key"])
            assert shipped is not None
            backend = TinyBackend(
                f"tiny?seed={seed}&weights=shipped",
                recipe,
                BackendOptions(),
                weights="shipped",
                progress=False,
            )
            acc = training_length_accuracy(backend, v, datasets)
            manifest = read_manifest()
            for e in manifest["checkpoints"]:
                if e["file"] == entry["file"]:
                    e["accuracy_at_training_length"] = {k: round(a, 4) for k, a in acc.items()}
            from vniahd.files import write_json_atomic

            write_json_atomic(WEIGHTS_DIR / "manifest.json", manifest)
            print(json.dumps({"file": entry["file"], "bytes": entry["bytes"], "accuracy": acc}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
