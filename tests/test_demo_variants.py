"""``vniahd demo --variants all``: which variants it means and which models it must train first."""

from __future__ import annotations

from vniahd.demo import DEMO_VARIANTS, _unshipped, expand_variants
from vniahd.rope import PRESETS, get_variant
from vniahd.rope.presets import PAPER_PRESETS, published_presets


def test_all_is_the_papers_four_then_every_published_design():
    got = expand_variants(("all",))
    assert got[:4] == DEMO_VARIANTS
    # every published preset, less ILRoPE: its positions and frequencies are MRoPE-I's
    assert get_variant("ilrope").spec == get_variant("mrope-i").spec
    assert (
        set(got[4:])
        == set(published_presets()) - {"ilrope"}
        == set(PRESETS) - set(PAPER_PRESETS) - {"ilrope"}
    )
    assert {"hope", "vrope", "mhrope", "videorope-plus", "mrope-i", "circle-rope", "v2pe"} <= set(got)
    # named twice or next to 'all': once, in first-seen order
    assert expand_variants(("videorope", "all", "hope")) == ("videorope", "vanilla", "tad", "mrope", *got[4:])


def test_unshipped_names_what_the_demo_trains_first(demo_haystack):
    from vniahd.models.tiny.recipe import Recipe

    variants = [get_variant("videorope"), get_variant("hope-mmr")]
    # videorope seed 0 ships with the package; hope-mmr does not, and no test trains it
    assert _unshipped(Recipe(), variants, (0,), "auto") == ["hope-mmr/seed0"]
    # --retrain: nothing shipped counts
    assert _unshipped(Recipe(), variants, (0,), "local") == ["videorope/seed0", "hope-mmr/seed0"]


def test_demo_tasks_flag_and_depth_grids():
    """``--tasks vruler`` means the four V-RULER tasks beside V-NIAH-D; multi-key's grid stops
    before depth 1 (its needles need a window after the depth), the others keep the demo's; the
    stack's lengths become tokens (2×2 tokens per frame; the 16-frame training length's 64 tokens
    go to the clip)."""
    import pytest

    from vniahd.cli.tiny_commands import _tasks
    from vniahd.demo import DemoConfig, run_demo
    from vniahd.demo_datasets import task_depths
    from vniahd.errors import VniahdError

    assert _tasks("vruler") == ("multi-key", "counting", "ordering", "stack")
    assert _tasks("counting, vruler") == ("counting", "multi-key", "ordering", "stack")
    from vniahd.demo_datasets import stack_grid
    from vniahd.models.tiny.recipe import Recipe

    assert stack_grid(Recipe(), "16,32,128") == ("64,128,512", 64)
    assert _tasks("") == ()
    assert task_depths("multi-key", "0:1:0.25") == "0,0.25,0.5,0.75"
    assert task_depths("counting", "0:1:0.25") == "0:1:0.25"
    with pytest.raises(VniahdError, match="unknown demo task"):
        run_demo(DemoConfig(tasks=("lengthy",)), log=lambda m: None)
