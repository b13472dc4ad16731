"""The embedded default model: a small video LM trained per RoPE variant on CPU, and the demo.

Modules, one job each:

- :mod:`.encoder`      EfficientNet-Lite0 in plain torch (strict load of the shipped ImageNet weights)
- :mod:`.features`     per-frame feature cache (4 tokens × 1320 per frame), keyed by frame content
- :mod:`.model`        :class:`TinyConfig`, :class:`TinyVideoLM` (projector + Qwen2VLTextModel + head)
- :mod:`.vocab`        the word-level tokenizer
- :mod:`.data`         training material and the train / held-out split (documented there)
- :mod:`.episodes`     training episodes built with the generator's planner functions
- :mod:`.sequence`     prompt template, token pieces and positions shared with the evaluator
- :mod:`.train`        per-variant training (deterministic given the seed)
- :mod:`.checkpoints`  transformers-format checkpoints + metadata in the cache
- :mod:`.recipe`       what a model is trained on, checkpoint keys, load-or-train
- :mod:`.backend`      the ``tiny`` model backend for the evaluator
- :mod:`.demo`         ``vniahd demo``

Typical use::

    from vniahd.tiny import Recipe, ensure_model
    from vniahd.rope import get_variant
    model, path, meta = ensure_model(Recipe(), get_variant("videorope"), train_if_missing=True)
"""

from vniahd.tiny.model import TinyConfig, TinyVideoLM
from vniahd.tiny.recipe import Recipe, ensure_model, train_and_save
from vniahd.tiny.train import TrainConfig, train

__all__ = ["Recipe", "TinyConfig", "TinyVideoLM", "TrainConfig", "ensure_model", "train", "train_and_save"]
