"""Regenerate needles/demo (same as `vniahd needles build-demo`)."""

from pathlib import Path

from vniahd.needles.demo import build_demo_needles

if __name__ == "__main__":
    print(build_demo_needles(Path(__file__).resolve().parents[1] / "needles" / "demo"))
