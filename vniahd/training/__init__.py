"""Training the embedded tiny model (:mod:`vniahd.models.tiny`), one checkpoint per RoPE variant.

- :mod:`.data`         training material and the train / held-out split
- :mod:`.episodes`     training episodes built with the generator's planner functions
- :mod:`.train`        per-variant training (deterministic given the seed on one machine)
- :mod:`.verify`       retrain a shipped checkpoint and compare it with the shipped file
- :mod:`.acceptance`   held-out accuracy at the training length (the 0.90 acceptance level)

Typical use::

    from vniahd.models.tiny.recipe import Recipe, ensure_model
    from vniahd.rope import get_variant
    model, path, meta = ensure_model(Recipe(), get_variant("videorope"), train_if_missing=True)
"""
