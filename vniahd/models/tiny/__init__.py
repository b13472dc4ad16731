"""The embedded default model (``--model tiny``): a small video LM with one set of weights per RoPE
variant, scored through the ordinary evaluator like any other backend.

Modules, one job each:

- :mod:`.encoder`      EfficientNet-Lite0 in plain torch (strict load of the shipped ImageNet weights)
- :mod:`.features`     per-frame feature cache (4 tokens × 1320 per frame), keyed by frame content
- :mod:`.model`        :class:`TinyConfig`, :class:`TinyVideoLM` (projector + Qwen2VLTextModel + head)
- :mod:`.vocab`        the word-level tokenizer
- :mod:`.sequence`     prompt pieces and positions shared by training and the backend
- :mod:`.checkpoints`  transformers-format checkpoints + metadata in the cache
- :mod:`.shipped`      the trained weights shipped in ``weights/`` (what the demo scores)
- :mod:`.recipe`       what a model is trained on, checkpoint keys, load-or-train
- :mod:`.backend`      the ``tiny`` model backend for the evaluator

Training lives in :mod:`vniahd.training`, the demo in :mod:`vniahd.demo`. Nothing is imported
here, so importing one module does not load the others.
"""
