"""Reference results from the existing V-NIAH / V-NIAH-D scripts: ``all_accuracies.json``
(the mapping to records is in :mod:`vniahd.reporting.load`'s docstring)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from vniahd.errors import VniahdError
from vniahd.reporting.sources import (
    SOURCE_PREFIX,
    Source,
    file_sha256,
    model_short_name,
    number,
    read_text,
    where,
)

REFERENCE_NAME = "all_accuracies.json"
REFERENCE_KEYS = ("Num. Frame", "Frame Depth", "Score")
#: Tokens per frame of the reference protocol (252×448 frames; docs/reference-protocol.md).
REFERENCE_TOKENS_PER_FRAME = 144


def _json_list_items(text: str, path: Path) -> list[tuple[Any, int]]:
    """Parse a top-level JSON list, returning each element with the line it starts on."""
    decoder = json.JSONDecoder()

    def fail(msg: str, pos: int) -> VniahdError:
        return VniahdError(
            f"{where(path, text.count(chr(10), 0, pos) + 1)}: {msg}; expected a "
            'JSON list of {"Num. Frame", "Frame Depth", "Score"} objects'
        )

    n, i = len(text), 0

    def skip(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    i = skip(i)
    if i >= n or text[i] != "[":
        raise fail("not a JSON list", i)
    i = skip(i + 1)
    items: list[tuple[Any, int]] = []
    if i < n and text[i] == "]":
        return items
    while True:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise fail(f"not valid JSON ({exc.msg})", exc.pos) from None
        items.append((obj, text.count("\n", 0, i) + 1))
        i = skip(end)
        if i < n and text[i] == ",":
            i = skip(i + 1)
            continue
        if i < n and text[i] == "]":
            if skip(i + 1) != n:
                raise fail("unexpected text after the list", skip(i + 1))
            return items
        raise fail("expected ',' or ']'", i)


def load_reference_accuracies(
    path: str | Path,
    *,
    variant: str | None = None,
    model: str = "reference",
    schedule: str = "unknown",
    tokens_per_frame: float = REFERENCE_TOKENS_PER_FRAME,
) -> tuple[pd.DataFrame, Source]:
    """Records of a reference ``all_accuracies.json`` (see the module docstring for the mapping)."""
    path = Path(path)
    if path.is_dir():
        path = path / REFERENCE_NAME
    if not path.is_file():
        raise VniahdError(
            f"reference results file {path} does not exist; pass an "
            "all_accuracies.json written by the V-NIAH scripts"
        )
    if path.name == "run.json":
        raise VniahdError(
            f"{path} is a results directory's run.json, not a results file; pass the "
            f"directory {path.parent} instead"
        )
    items = _json_list_items(read_text(path), path)
    if not items:
        raise VniahdError(f"{path}: the list is empty; nothing to plot")
    if variant is None:
        variant = path.parent.name if path.name == REFERENCE_NAME else path.stem
    rows: list[dict[str, Any]] = []
    depths: list[float] = []
    for obj, line in items:
        if not isinstance(obj, dict):
            raise VniahdError(f"{where(path, line)}: expected an object, got {type(obj).__name__}")
        missing = [k for k in REFERENCE_KEYS if k not in obj]
        if missing:
            raise VniahdError(
                f"{where(path, line)}: entry is missing {', '.join(map(repr, missing))}"
                '; every entry needs "Num. Frame", "Frame Depth" and "Score"'
            )
        frames = number(obj["Num. Frame"], "Num. Frame", path, line, integer=True)
        depth = number(obj["Frame Depth"], "Frame Depth", path, line)
        score = obj["Score"]
        score = float(score) if isinstance(score, bool) else number(score, "Score", path, line)
        if not 0.0 <= score <= 1.0 or frames <= 0 or depth < 0:
            raise VniahdError(
                f"{where(path, line)}: need Score in [0, 1], Num. Frame > 0 and Frame Depth >= 0; got {obj!r}"
            )
        depths.append(depth)
        rows.append({"length": int(frames), "depth": depth, "correct": score, "line": line})
    # The scripts write percents (0..100); a file whose depths are all <= 1 is in fractions.
    scale = 1.0 if max(depths) <= 1.0 else 100.0
    spec = f"{model}"
    for r in rows:
        r["depth"] = r["depth"] / scale
        if r["depth"] > 1.0:
            raise VniahdError(
                f"{where(path, r['line'])}: Frame Depth {r['depth'] * scale} is above 100 percent"
            )
        r.update(
            model=model_short_name(spec),
            model_spec=spec,
            variant=variant,
            scoring="reference",
            schedule=schedule,
            needle_id="",
            sample_id=f"line{r.pop('line')}",
            tokens_per_frame=float(tokens_per_frame),
            num_tokens=math.nan,
            source=str(path.resolve()),
            dataset=f"{SOURCE_PREFIX}{path.resolve()}",
            model_fp="",
        )
    source = Source(
        path=str(path.resolve()),
        kind="reference",
        files={path.name: file_sha256(path)},
        num_records=len(rows),
        dataset=f"{SOURCE_PREFIX}{path.resolve()}",
    )
    source.notes.append(
        f"reference file: Frame Depth read as {'fractions' if scale == 1 else 'percent'}; each entry "
        "is one cell score, so n counts cells (a conservative interval); schedule unknown; "
        f"{tokens_per_frame:g} tokens per frame assumed"
    )
    return pd.DataFrame(rows), source
