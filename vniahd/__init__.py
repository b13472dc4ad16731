"""vniahd: V-NIAH-D benchmark generation, RoPE-variant evaluation and reports.

Subpackages, one concept each:

- :mod:`vniahd.rope`     position layouts, frequency allocations, presets, rotation (all RoPE math)
- :mod:`vniahd.media`    video decoding, frame sampling, haystack cache, mp4 export
- :mod:`vniahd.needles`  needle-set schema, loaders (native + reference format), demo set builder
- :mod:`vniahd.plan`     the grid and distractor schedules (pure functions)
- :mod:`vniahd.dataset`  dataset directories: write, open, inspect
- :mod:`vniahd.models`   model backends (hf:PATH, random:*, tiny) behind one interface
- :mod:`vniahd.evaluate` the evaluation runner, scoring modes, embedding cache, results
- :mod:`vniahd.report`   heatmaps, comparisons, summary tables, report.html
- :mod:`vniahd.tiny`     the embedded default model: encoder, training, demo
"""

__version__ = "0.1.0"
