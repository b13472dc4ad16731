"""What produced an output: package versions and the machine, recorded in every output file."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import platform

_PACKAGES = (
    "vniahd",
    "torch",
    "transformers",
    "tokenizers",
    "numpy",
    "pandas",
    "pyarrow",
    "decord",
    "av",
    "opencv-python-headless",
    "pillow",
    "matplotlib",
)


def package_versions() -> dict[str, str | None]:
    """Installed version of every package that can change our numbers (None if absent)."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = None
    return out


def provenance() -> dict:
    """Versions, python, platform and a UTC timestamp."""
    return {
        "versions": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
