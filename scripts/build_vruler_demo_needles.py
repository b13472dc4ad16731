"""Regenerate needles/vruler-demo (the V-RULER demo needle files and their images)."""

from pathlib import Path

from vniahd.needles.vruler_demo import build_vruler_demo

if __name__ == "__main__":
    for path in build_vruler_demo(Path(__file__).resolve().parents[1] / "needles" / "vruler-demo").values():
        print(path)
