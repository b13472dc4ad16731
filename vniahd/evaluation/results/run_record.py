"""run.json: what a run of :class:`~vniahd.evaluation.Runner` records about itself.

The dataset and its fingerprint, the model, every variant with what applying it installed and
which weights scored it, the prompt, the scoring mode, the attention scope, how the work was
scheduled and the software versions. The identity fields (:data:`vniahd.records.IDENTITY`) decide
whether later runs may append to the directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vniahd.evaluation.runner import Runner


def run_record(runner: Runner) -> dict[str, Any]:
    """The run.json object of ``runner``'s run (the first entry of ``runs`` is this invocation)."""
    from datetime import datetime, timezone

    from vniahd.provenance import provenance

    ds = runner.dataset
    cfg = ds.config
    return {
        "dataset": {
            "path": str(Path(ds.path).resolve()),
            "fingerprint": ds.fingerprint,
            "haystack_key": ds.haystack_key,
            "frame_size": list(ds.frame_size),
            "num_samples": int(len(ds.samples)),
            **{
                k: cfg.get(k)
                for k in (
                    "schedule",
                    "period",
                    "fps",
                    "seed",
                    "lengths",
                    "depths",
                    # V-RULER: the task, its placement and (stack) the filler settings
                    "task",
                    "placement",
                    "visual_tokens",
                    "noise_text",
                )
                if k in cfg
            },
        },
        "model": runner.backend.describe(),
        # Per variant: its definition and what applying it to this model installs (sections,
        # axes) and which weights score it — from the backend that applies it.
        "variants": {
            v.name: {
                **v.to_dict(),
                **runner.backend.variant_record(v),
                **({"resolved_from": "native"} if asked.is_native else {}),
            }
            for asked, v in zip(runner.config.variant_list, runner.variants)
        },
        "frame_mode": runner.backend.options.frame_mode,
        "frames_per_group": runner.frames_per_group,
        "tokens_per_frame": runner.cache.tokens_per_frame,
        "visual_grid": list(runner.grid),
        "encoder_key": runner.cache.key,
        "prompt_template": runner.config.template.to_dict(),
        "prompt_layout": runner.prompt_layout.record(),
        "scoring": [runner.config.scoring],
        # what the scored rows attend to: "full", or the released harness's zigzag-local view
        "attention_scope": runner.config.scope.name,
        "generate": {"max_new_tokens": runner.config.max_new_tokens},
        "evaluation": runner.evaluation_settings(),
        "config": runner.config.to_dict(),
        "runs": [
            {
                "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "variants": [v.name for v in runner.variants],
                "scoring": runner.config.scoring,
                "limit": runner.config.limit,
                **runner.evaluation_settings(),
            }
        ],
        "provenance": provenance(),
    }
