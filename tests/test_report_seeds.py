"""The verdict across seeds (vniahd.reporting.seeds): t quantiles, per-seed means, t-intervals, drops,
paired comparisons and their sentences, in summary.md, report.html and `vniahd plot --across`.

The fixture: three seeds of the tiny model (specs ``tiny``, ``tiny?seed=1``, ``tiny?seed=2``, each
with its own fingerprint), variants vanilla, mrope and videorope, V-NIAH and V-NIAH-D as separate
results directories (as the demo writes them). Each (variant, benchmark) has 12 samples (2 lengths
× 3 depths × 2 needles); WRONG gives how many of them each seed gets wrong, so every per-seed
accuracy is (12 − k)/12. Hand-computed below with t_{0.975,2} = 4.302653 and n = 3:

- mrope V-NIAH-D: 75, 83.333, 66.667 → mean 75, s = 8.3333, s/√3 = 4.8113, half 20.7011
  → 75.0 [54.3, 95.7].
- mrope drop (V-NIAH 100 each): 25, 16.667, 33.333 → +25.0 [+4.3, +45.7].
- videorope V-NIAH-D: 91.667, 100, 75 → mean 88.889, s = 12.729, half 31.62 → [57.3, 120.5], the
  upper end clipped to 100.0.
- videorope − mrope on V-NIAH-D: 16.667, 16.667, 8.333 → mean 13.889, s = 4.8113, half 11.9518
  → +13.9 [+1.9, +25.8], 3 of 3: called.
- vanilla − mrope on V-NIAH: −8.333, −16.667, −25 → −16.7 [−37.4, +4.0]: not called.
- vanilla − mrope on V-NIAH-D: 0, −8.333, −16.667 → −8.3 [−29.0, +12.4], 2 of 3 negative.
- videorope − mrope on V-NIAH: 0, 0, 0 → +0.0 [+0.0, +0.0], not called (3 of 3 are zero).
"""

import json
import math

import pytest
from test_report_fixtures import write_results

from vniahd.cli import main
from vniahd.errors import VniahdError
from vniahd.reporting import write_report
from vniahd.reporting.load import load_inputs
from vniahd.reporting.seeds import across, seed_of, split_seed
from vniahd.reporting.stats import t_interval, t_quantile, t_two_sided_mass

LENGTHS, DEPTHS, NEEDLES = (100, 300), (0.0, 0.5, 1.0), ("n0", "n1")
#: (variant, schedule) → samples wrong in seeds 0, 1, 2 (of 12).
WRONG = {
    ("vanilla", "none"): (1, 2, 3),
    ("vanilla", "reference"): (3, 3, 6),
    ("mrope", "none"): (0, 0, 0),
    ("mrope", "reference"): (3, 2, 4),
    ("videorope", "none"): (0, 0, 0),
    ("videorope", "reference"): (1, 0, 3),
}


def _index(length, depth, needle):
    return LENGTHS.index(length) * 6 + DEPTHS.index(depth) * 2 + NEEDLES.index(needle)


def _tiny(seed):
    return "tiny" if seed == 0 else f"tiny?seed={seed}"


def _seeds(tmp_path, seeds=(0, 1, 2), variants=("vanilla", "mrope", "videorope"), spec=_tiny):
    dirs = []
    for seed in seeds:
        for schedule in ("none", "reference"):

            def correct(v, s, L, d, n, r, seed=seed):
                return _index(L, d, n) >= WRONG[(v, s)][seed]

            dirs.append(
                write_results(
                    tmp_path / f"{schedule}-seed{seed}",
                    correct=correct,
                    variants=variants,
                    schedules=(schedule,),
                    lengths=LENGTHS,
                    depths=DEPTHS,
                    needles=NEEDLES,
                    model=spec(seed),
                    model_fp=f"fp-seed{seed}",
                    dataset_fp=f"ds-{schedule}",
                )
            )
    return dirs


@pytest.mark.parametrize(
    "df, q",
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (9, 2.262), (10, 2.228), (30, 2.042)],
)
def test_t_quantiles_match_the_table(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=5e-4)


def test_t_distribution_closed_forms():
    # df 1 is Cauchy: P(|T| <= 1) = 1/2; df 2: P(|T| <= t) = t / sqrt(2 + t²).
    assert t_two_sided_mass(1.0, 1) == pytest.approx(0.5, abs=1e-15)
    assert t_two_sided_mass(3.0, 2) == pytest.approx(3 / math.sqrt(11), abs=1e-15)
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729911275, abs=1e-9)
    assert t_quantile(0.975, 4) == pytest.approx(2.7764451051977987, abs=1e-9)
    assert t_quantile(0.95, 1) == pytest.approx(6.313751514675043, abs=1e-9)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962339, abs=1e-5)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


def test_t_interval():
    mean, lo, hi = t_interval([75.0, 250 / 3, 200 / 3])
    assert mean == pytest.approx(75.0)
    half = 4.302652729911275 * (25 / 3) / math.sqrt(3)
    assert (lo, hi) == pytest.approx((75 - half, 75 + half))
    assert t_interval([1.0])[0] == 1.0 and math.isnan(t_interval([1.0])[1])
    assert all(math.isnan(v) for v in t_interval([]))


def test_seed_comes_from_the_spec_or_run_json():
    assert split_seed("tiny?seed=2&steps=5") == ("tiny?steps=5", 2)
    assert split_seed("tiny?seed=1") == ("tiny", 1)
    assert seed_of("tiny") == 0  # the tiny model's default seed
    # The demo's specs: seed 0 is written without a seed, also with --steps.
    assert seed_of("tiny?steps=5") == 0 and split_seed("tiny?seed=1&steps=5") == ("tiny?steps=5", 1)
    assert seed_of("tiny?steps=5", {"model": {"tiny": {"train_config": {"seed": 7}}}}) == 7
    assert seed_of("hf:/ckpt/Qwen2-VL-7B") is None
    assert seed_of("random:qwen2-vl", {"model": {"spec": "random:qwen2-vl"}}) is None


def test_tiny_default_seed_is_train_configs():
    from vniahd.reporting.seeds import TINY_DEFAULT_SEED
    from vniahd.training.train import TrainConfig

    assert TrainConfig().seed == TINY_DEFAULT_SEED


def test_across_numbers_by_hand(tmp_path):
    loaded = load_inputs(_seeds(tmp_path))
    ac = across(loaded.records, loaded.sources)
    assert ac is not None and ac.mode == "seeds" and ac.baseline == "mrope" and ac.families == ["tiny"]
    rows = {(r.variant, r.benchmark): r for r in ac.rows}
    r = rows[("mrope", "V-NIAH-D")]
    assert [lab for lab, _ in r.values] == ["s0", "s1", "s2"]
    assert [v for _, v in r.values] == pytest.approx([75.0, 250 / 3, 200 / 3])
    assert (r.mean, r.lo, r.hi) == pytest.approx((75.0, 54.29885, 95.70115), abs=1e-4)
    v = rows[("videorope", "V-NIAH-D")]
    assert v.mean == pytest.approx(800 / 9) and v.hi == 100.0  # clipped: 120.5 by the formula
    assert v.lo == pytest.approx(800 / 9 - 4.302652729911275 * 12.729376 / math.sqrt(3), abs=1e-4)
    drops = {(d.variant, d.benchmark): d for d in ac.drops}
    d = drops[("mrope", "V-NIAH-D")]
    assert [x for _, x in d.values] == pytest.approx([25.0, 50 / 3, 100 / 3])
    assert (d.mean, d.lo, d.hi) == pytest.approx((25.0, 4.29885, 45.70115), abs=1e-4)
    pairs = {(p.variant, p.benchmark): p for p in ac.pairs}
    assert set(pairs) == {(v, b) for v in ("vanilla", "videorope") for b in ("V-NIAH", "V-NIAH-D")}
    p = pairs[("videorope", "V-NIAH-D")]
    assert [x for _, x in p.values] == pytest.approx([50 / 3, 50 / 3, 25 / 3])
    assert (p.mean, p.lo, p.hi) == pytest.approx((125 / 9, 1.93708, 25.84070), abs=1e-4)
    assert p.called and p.consistent == 3 and p.n == 3
    q = pairs[("vanilla", "V-NIAH-D")]
    assert (q.mean, q.consistent, q.called) == (pytest.approx(-25 / 3), 2, False)
    assert not pairs[("vanilla", "V-NIAH")].called and pairs[("vanilla", "V-NIAH")].hi > 0
    z = pairs[("videorope", "V-NIAH")]
    assert (z.mean, z.lo, z.hi, z.consistent, z.called) == (0.0, 0.0, 0.0, 3, False)


def test_summary_and_html_lead_with_the_across_seed_table(tmp_path):
    paths = write_report(_seeds(tmp_path), tmp_path / "out")
    md = paths["summary.md"].read_text()
    assert md.index("## Across seeds — tiny") < md.index("## Per model") < md.index("| tiny-seed-1 |")
    assert "95% Student-t interval over the per-seed means" in md
    assert (
        "| mrope | 100.0 [100.0, 100.0] | s0 100.0 · s1 100.0 · s2 100.0 | 75.0 [54.3, 95.7] | "
        "s0 75.0 · s1 83.3 · s2 66.7 | +25.0 [+4.3, +45.7] (s0 +25.0 · s1 +16.7 · s2 +33.3) |"
    ) in md
    assert "| videorope | 100.0 [100.0, 100.0] |" in md and "88.9 [57.3, 100.0]" in md
    assert (
        "| videorope − mrope | V-NIAH-D | s0 +16.7 · s1 +16.7 · s2 +8.3 | +13.9 [+1.9, +25.8] | "
        "3 of 3 | videorope higher |"
    ) in md
    sentences = [
        "- videorope − mrope on V-NIAH-D: +13.9 points [+1.9, +25.8]; consistent in 3 of 3 seeds "
        "— videorope higher",
        "- vanilla − mrope on V-NIAH-D: -8.3 points [-29.0, +12.4]; consistent in 2 of 3 seeds "
        "— no difference shown",
        "- vanilla − mrope on V-NIAH: -16.7 points [-37.4, +4.0]; consistent in 3 of 3 seeds "
        "— no difference shown",
        "- videorope − mrope on V-NIAH: +0.0 points [+0.0, +0.0]; consistent in 3 of 3 seeds "
        "— no difference shown",
    ]
    for s in sentences:
        assert s in md, s
    page = paths["report.html"].read_text()
    assert page.index('id="across"') < page.index('id="paired"') < page.index('id="summary"')
    assert '<td class="num">+13.9 [+1.9, +25.8]</td>' in page
    assert sentences[0][2:] in page
    assert page.count("<table>") == 4


def test_baseline_option_and_one_seed(tmp_path):
    dirs = _seeds(tmp_path)
    md = write_report(dirs, tmp_path / "v", baseline="vanilla")["summary.md"].read_text()
    assert "### Paired with vanilla" in md and "- mrope − vanilla on V-NIAH: +16.7 points" in md
    # One seed: the table only when asked for, and then without a between-seed interval.
    one = _seeds(tmp_path / "one", seeds=(1,))
    assert "Across seeds" not in write_report(one, tmp_path / "o1")["summary.md"].read_text()
    md = write_report(one, tmp_path / "o2", across="seeds")["summary.md"].read_text()
    assert "Interval: one seed, no between-seed interval." in md
    assert "| mrope | 100.0 (one seed, no between-seed interval) | s1 100.0 |" in md
    assert (
        "- videorope − mrope on V-NIAH-D: +16.7 points (one seed, no between-seed interval); "
        "consistent in 1 of 1 seed — no difference shown"
    ) in md
    with pytest.raises(VniahdError, match="unknown --across"):
        write_report(dirs, tmp_path / "x", across="checkpoints")


def test_demo_call_pairs_with_mrope_and_keeps_vanilla_deltas(tmp_path):
    """As vniahd.demo calls the report: specs ``tiny?steps=N`` / ``tiny?seed=1&steps=N``,
    baseline vanilla for the delta figures, paired comparisons with mrope."""

    def spec(seed):
        return "tiny?steps=5" if seed == 0 else f"tiny?seed={seed}&steps=5"

    dirs = _seeds(tmp_path, spec=spec)
    paths = write_report(dirs, tmp_path / "out", baseline="vanilla", paired_baseline="mrope")
    md = paths["summary.md"].read_text()
    assert "## Across seeds — tiny-steps-5" in md and "### Paired with mrope" in md
    assert "| mrope | 100.0 [100.0, 100.0] | s0 100.0 · s1 100.0 · s2 100.0 | 75.0 [54.3, 95.7] |" in md
    assert {"delta_mrope.png", "delta_videorope.png"} <= set(paths)


def test_no_baseline_variant_says_so(tmp_path):
    dirs = _seeds(tmp_path, variants=("vanilla", "videorope"))
    md = write_report(dirs, tmp_path / "out")["summary.md"].read_text()
    assert "## Across seeds" in md and "No paired comparisons: no baseline variant (mrope" in md


def test_plot_across_models_treats_checkpoints_as_replicates(tmp_path, capsys):
    dirs = []
    for i, (name, wrong) in enumerate((("a", (0, 2)), ("b", (1, 5)), ("c", (3, 4)))):

        def correct(v, s, L, d, n, r, wrong=wrong):
            return _index(L, d, n) >= wrong[v == "videorope"]

        dirs.append(
            write_results(
                tmp_path / name,
                correct=correct,
                variants=("mrope", "videorope"),
                lengths=LENGTHS,
                depths=DEPTHS,
                needles=NEEDLES,
                model=f"hf:/ckpt/{name}/Qwen2-VL-7B",
                model_fp=f"fp{i}",
            )
        )
    # Without --across models: checkpoints carry no seed, so no across-seed table.
    assert main(["plot", *map(str, dirs), "--out", str(tmp_path / "plain")]) == 0
    assert "Across" not in capsys.readouterr().out
    assert main(["plot", *map(str, dirs), "--out", str(tmp_path / "cli"), "--across", "models"]) == 0
    out = capsys.readouterr().out
    assert "## Across models" in out and "each model (checkpoint) is one replicate" in out
    # mrope: 100, 91.667, 75 → mean 88.9; videorope − mrope: −16.667, −33.333, −8.333 → −19.4.
    assert "| mrope | 88.9 [57.3, 100.0] | Qwen2-VL-7B (" in out
    assert "- videorope − mrope on V-NIAH: -19.4 points [" in out
    assert "consistent in 3 of 3 models" in out
    options = json.loads(
        (tmp_path / "cli" / "report.html")
        .read_text()
        .split("report provenance and options</summary><pre>")[1]
        .split("</pre>")[0]
        .replace("&quot;", '"')
    )["options"]
    assert options["across"] == "models" and options["paired_baseline"] == "mrope"
