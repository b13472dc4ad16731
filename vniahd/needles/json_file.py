"""Reading a needle file: its JSON and its bytes (for the set's fingerprint), with one error
naming the file and the fix for a missing, non-UTF-8 or invalid file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vniahd.errors import VniahdError


def read_needle_json(path: Path) -> tuple[Any, bytes]:
    """``(parsed JSON, raw bytes)`` of a needle file."""
    if not path.is_file():
        raise VniahdError(f"needle file {path} not found; pass an existing JSON file (or 'demo')")
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError as exc:
        raise VniahdError(f"{path} is not UTF-8 text ({exc}); save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise VniahdError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; fix the file"
        ) from None
