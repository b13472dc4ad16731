"""Generation options, their defaults, and named protocols (``vniahd generate --protocol NAME``).

A protocol is one switch that sets every option a published pipeline used; an option the user
gives explicitly still overrides it. ``resolve_options`` is the one place that decides an option's
value: explicit value, else the protocol's, else :data:`DEFAULTS` (today's behaviour).

- ``videorope``: the released V-NIAH-D scripts of VideoRoPE (Wei et al., ICML 2025, arXiv
  2502.05173; ``vision_niah_d/produce_haystack_embedding.py`` and
  ``eval_vision_niah_interrupt.py`` with ``eval_debug_interrupt.sh``): 1 fps (every
  ``round(fps)``-th frame), 252×448 frames resized as torchvision resizes uint8 tensors, two
  consecutive sampled frames per temporal group, lengths 100…2900 step 200 and depths 0…1 step 0.2
  counted in groups, one distractor 200 groups from the needle (``reference`` schedule), and the
  released loop's before/after draws (``random.seed(24242424)``, one ``random.random()`` per
  length, depth and needle). docs/reference-protocol.md lists what still differs (the film).
- ``vruler``: the released V-RULER scripts of VideoRoPE++ (``videorope_plus/v_ruler/scripts/*.sh``),
  whose four embedding tasks reuse the V-NIAH-D harness: the same options, the task chosen by
  ``--task`` (docs/vruler.md).
"""

from __future__ import annotations

from typing import Any

from vniahd.errors import UnknownNameError, VniahdError

#: Every option a protocol may set, with today's default (``vniahd generate`` without --protocol).
DEFAULTS: dict[str, Any] = {
    "lengths": "100:2900:200",
    "depths": "0:1:0.2",
    "schedule": "reference",
    "period": 200,
    "fps": 1.0,
    "size": (252, 448),
    "seed": 24242424,
    "frames_per_group": 1,
    "draws": "hashed",
    "resize": "pil",
}

#: Named protocols: the options each one sets (see module docstring for sources).
_VIDEOROPE: dict[str, Any] = {
    "lengths": "100:2900:200",
    "depths": "0:1:0.2",
    "schedule": "reference",
    "period": 200,
    "fps": 1.0,
    "size": (252, 448),
    "seed": 24242424,
    "frames_per_group": 2,
    "draws": "reference",
    "resize": "torch-bicubic",
}

PROTOCOLS: dict[str, dict[str, Any]] = {
    "videorope": _VIDEOROPE,
    # V-RULER's four embedding tasks share V-NIAH-D's harness, haystack and grid; with --task
    # multi-key its depths stop at 0.8 (vniahd.dataset.tasks.released_depths_spec)
    "vruler": dict(_VIDEOROPE),
}

#: One line per protocol for ``--help``.
PROTOCOL_HELP = {
    "videorope": "the released VideoRoPE V-NIAH-D pipeline: --fps 1 --size 252x448 --resize "
    "torch-bicubic --frames-per-group 2 --lengths 100:2900:200 --depths 0:1:0.2 --schedule "
    "reference --period 200 --seed 24242424 --draws reference",
    "vruler": "the released V-RULER pipeline (VideoRoPE++, videorope_plus/v_ruler/): the same as "
    "videorope, with --task choosing the task (multi-key: --depths 0:0.8:0.2; the other tasks "
    "place no distractor; stack: --lengths 224000:296000:8000 tokens, clips at --fps 2)",
}

FRAMES_PER_GROUP = (1, 2)


def resolve_options(protocol: str | None, **given: Any) -> dict[str, Any]:
    """Every option of :data:`DEFAULTS`: the value in ``given`` when not ``None``, else the
    protocol's, else the default."""
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"not protocol options: {', '.join(sorted(unknown))}")
    base = dict(DEFAULTS)
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise UnknownNameError("protocol", protocol, list(PROTOCOLS))
        base.update(PROTOCOLS[protocol])
    base.update({k: v for k, v in given.items() if v is not None})
    fpg = base["frames_per_group"]
    if isinstance(fpg, bool) or not isinstance(fpg, int) or fpg not in FRAMES_PER_GROUP:
        raise VniahdError(
            f"--frames-per-group {fpg!r}: use 1 (one sampled frame per temporal group, repeated "
            "to the model's temporal patch) or 2 (two consecutive sampled frames, as the released "
            "V-NIAH-D scripts)"
        )
    return base
