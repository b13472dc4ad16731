"""Evaluation cost: the reference protocol vs ours (prefix sharing + chunked prefill + LM head on
scored rows), side by side on one CPU-scaled reference grid. Prints figures; asserts nothing.

Run: ``.venv/bin/python bench/eval_prefix.py`` (``make bench`` runs it; a few minutes on 2 cores).

Dataset: the reference grid's shape scaled to a CPU — 15 lengths (10..290 step 20, the reference
100..2900 step 200 divided by 10) × 6 depths (0..1 step 0.2) × 5 needles (the first 5 demo
needles), reference schedule with the period divided by 10 too (20 frames), built by the real
generator from the demo haystack, frames 56×56 → 2×2 = 4 visual tokens per frame.

Model: ``random:qwen2-vl`` with 7B Qwen2-VL's proportions scaled by 1/32 in width (hidden 3584 →
112, heads 28/4 kv → 7/1 kv at head dim 16, MLP 18944 → 592) and 1/4 in depth (28 → 7 layers)
with the vocabulary scaled by 1/32 · 1/4 (152064 → 1188), so that every linear term shrinks by the
same factor and the LM head's share of a token's linear FLOPs equals 7B's (both printed).
Attention's share cannot match on a CPU at the same time (it grows with context / width; 7B at
417k tokens is attention-dominated), so the figures of the FLOP model for the *real* reference
grid at 7B shapes (144 tokens per frame, lengths 100..2900) are printed as well.

Protocols, each in its own subprocess (so peak RSS values do not mix), run ``--repeats`` times
(default 3) alternating reference and ours: wall seconds are each arm's median (every run is
printed; a shared 2-core machine varies by ±10 % between back-to-back runs, so one pair of runs
can move the ratio by 0.2). Two peaks are printed: the
child's lifetime ``ru_maxrss`` (dominated by imports and model construction), and the peak RSS of
the evaluation section alone (the kernel's high-water mark reset through ``/proc/self/clear_refs``
right before it, see :mod:`vniahd.evaluation.execution.memory`), with its growth over the RSS at its start:
- ``reference``: every sample independently, one full forward, LM head over EVERY token in fp32
  (as the reference code does), argmax at the answer rows;
- ``ours``: ``vniahd.evaluation.Runner`` with its defaults (prefix sharing, chunked prefill, auto
  batching, head on scored rows).
FLOPs: measured on the calls actually made (``FlopCounter``: tokens fed × the context they attend
over, head rows) and, for the floors, the prefix tree (trie) of all samples' token sequences —
per (length, offset) group (the floor of the earlier per-length schedule) and across all lengths
(the global floor, which our prefix-tree walk targets: samples of different lengths share their
first frames, and samples with the same needle at the same slot share the frames after it too).
The 7B section also prints the multi-rank split (1, 2, 4, 8 ranks) against the global floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = "random:qwen2-vl?layers=7&hidden=112&heads=7&kv_heads=1&intermediate=592&vocab=1188&theta=1000000"
VARIANT = "videorope"
SEVEN_B = dict(hidden=3584, layers=28, heads=28, kv_heads=4, head_dim=128, intermediate=18944, vocab=152064)


def _rss_mb() -> float:
    """The process's lifetime peak RSS (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# ---- child processes -------------------------------------------------------------------------
def child(protocol: str, ds_dir: str, cache: str, out: str) -> None:
    import torch

    from vniahd.dataset import Dataset
    from vniahd.evaluation import EvalConfig, Runner, read_results
    from vniahd.evaluation.planning.flops import FlopCounter
    from vniahd.models import get_backend
    from vniahd.rope import get_variant, variant_axes
    from vniahd.rope.hf import install_allocation

    ds = Dataset.open(ds_dir)
    be = get_backend(SPEC)
    variant = get_variant(VARIANT)
    res_dir = Path(out) / f"results-{protocol}"
    settings = EvalConfig(variants=[variant], cache_dir=cache, progress=False)
    runner = Runner(ds, be, settings, res_dir)
    from vniahd.evaluation.execution.memory import PeakMemory, retain_freed_heap

    # Same runtime for both arms: the heap settings the runner applies on the CPU, and the same
    # OMP_NUM_THREADS (set by the parent for both children).
    retain_freed_heap()
    base_rss = _rss_mb()
    peak = PeakMemory(torch.device("cpu"))
    answers: dict[str, list] = {}
    max_logits = 0
    rss_before = _current_rss_mb()
    peak.start()  # resets the kernel's RSS high-water mark: the peak below is this section's
    with FlopCounter(be) as counter:
        t0 = time.perf_counter()
        if protocol == "ours":
            runner.run()
            answers = {r["sample_id"]: [r["correct"], r["prediction"]] for r in read_results(res_dir)}
            max_logits = counter.max_head_rows * be.vocab_size * 4
        else:
            rows = runner.rows()
            hay = runner.cache.haystack(ds.haystack_frames(), ds.haystack_key)
            names = {n for r in rows for n in [r["needle_image"], *r["distractor_images"]]}
            images = runner.cache.images({n: ds.image(n) for n in names})
            install_allocation(be.language_model, variant_axes(variant, be.rotary))
            with torch.inference_mode():
                for row in rows:
                    p = runner.prepare(row, hay, images)
                    inputs = runner.with_positions(p, variant)
                    ans = list(inputs.answer_ids)
                    emb = torch.cat([inputs.embeds, be.embed_text(ans).to(be.dtype)])
                    s = inputs.prompt_len
                    hidden = be.hidden_states(emb[None], inputs.positions[:, None, : len(emb)])
                    logits = be.lm_head(hidden[0]).float()  # every token, fp32 (reference code)
                    max_logits = max(max_logits, logits.numel() * 4)
                    pred = logits[s - 1 : s - 1 + len(ans)].argmax(-1).tolist()
                    answers[p.sample_id] = [pred == ans, be.tokenizer.decode(pred)]
                    del logits, hidden
        seconds = time.perf_counter() - t0
    eval_peak = peak.read()
    Path(out, f"{protocol}.json").write_text(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": _rss_mb(),
                "base_rss_mb": base_rss,
                "eval_peak_rss_mb": eval_peak / 2**20 if eval_peak else float("nan"),
                "rss_before_mb": rss_before,
                "flops": counter.flops,
                "tokens": counter.tokens,
                "head_rows": counter.head_rows,
                "max_logits_bytes": max_logits,
                "answers": answers,
                "prefill_chunk": runner.prefill_chunk,
                "batch_size": runner.batch_size,
            }
        )
    )


# ---- parent ----------------------------------------------------------------------------------
def build_dataset(root: Path, size: str):
    from vniahd.dataset.generate import generate
    from vniahd.needles.demo import build_demo_needles

    src = json.loads(build_demo_needles(root / "needles").read_text())
    src["needles"] = src["needles"][:5]
    path = root / "needles" / "needles5.json"
    path.write_text(json.dumps(src))
    return generate(
        haystack="demo",
        needles=path,
        out=root / "ds",
        lengths="10:290:20",
        depths="0:1:0.2",
        schedule="reference",
        period=20,
        fps=1.0,
        size=size,
        progress=False,
    )


def sequences(runner, rows, tpf: int, nb: int, answer_len) -> list[tuple[tuple, list]]:
    """(group key, atoms) per sample: the system text, one atom per frame, the rest."""
    out = []
    for r in rows:
        refs = runner.dataset.frame_sequence(r)
        needle = runner.dataset.needles[r["needle_id"]]
        after = runner.tokenizer.encode(runner.config.template.render_after(runner.builder.question(needle)))
        ans = runner.tokenizer.encode(needle.answer)
        atoms = [(("before",), nb)] + [(("frame", kind, ref), tpf) for kind, ref in refs]
        atoms.append((("after", tuple(after + ans)), len(after) + len(ans)))
        out.append(((int(r["length"]), int(r["haystack_offset"])), atoms))
    return out


def floors(shape, seqs, head_rows: int) -> dict[str, float]:
    from vniahd.evaluation.planning.flops import trie_flops

    groups: dict = {}
    for key, atoms in seqs:
        groups.setdefault(key, []).append(atoms)
    per_group = sum(trie_flops(shape, g)["flops"] for g in groups.values())
    glob = trie_flops(shape, [a for _, a in seqs])["flops"]
    head = head_rows * shape.head_per_row()
    indep = sum(shape.forward(sum(n for _, n in a), 0) for _, a in seqs)
    return {"per_group": per_group + head, "global": glob + head, "independent_body": indep}


def seven_b_grid() -> None:
    """The FLOP model on the real reference grid at 7B shapes (no model run)."""
    from vniahd.evaluation.planning.flops import ModelShape, trie_flops
    from vniahd.plan import plan_samples
    from vniahd.plan.period import parse_period  # noqa: F401  (documents where the period lives)

    shape = ModelShape(**SEVEN_B)
    samples = plan_samples(
        lengths=list(range(100, 2901, 200)),
        depths=["0", "0.2", "0.4", "0.6", "0.8", "1"],
        needles=[(f"n{i}", 1) for i in range(5)],
        schedule="reference",
        period=200,
        seed=24242424,
        haystack_frames=3000,
    )
    from vniahd.evaluation.planning.work_plan import cost_profile, plan_units, split_cost, split_units
    from vniahd.rope import get_variant

    tpf, nb, na, ans = 144, 14, 60, 1
    ref = 0.0
    seqs = []
    groups: dict = {}
    for s in samples:
        n = nb + s.num_frames * tpf + na + ans
        ref += shape.forward(n, 0, head_rows=n)
        first = min([s.needle_slot, *s.distractor_slots])
        groups.setdefault(s.length, []).append((first, n))
        atoms = [(("b",), nb)]
        inserted = {
            s.needle_slot: ("needle", s.needle_id),
            **{d: ("dis", s.needle_id) for d in s.distractor_slots},
        }
        i = 0
        for slot in range(s.num_frames):
            if slot in inserted:
                atoms.append((inserted[slot], tpf))
            else:
                atoms.append((("h", i), tpf))
                i += 1
        atoms.append((("a", s.sample_id), na + ans))
        seqs.append((s.length, atoms))

    def per_length_schedule() -> float:  # the schedule before prefixes were shared across lengths
        total = 0.0
        for _, members in groups.items():
            prefix = 0
            for first, n in sorted(members):
                p = nb + first * tpf
                if p > prefix:
                    total += shape.forward(p - prefix, prefix)
                    prefix = p
                total += shape.forward(n - p, p, head_rows=ans)
        return total

    def forward(n: int, past: int) -> float:
        return shape.forward(n, past)

    rows = [s.to_row() for s in samples]
    units = plan_units(rows, [get_variant(VARIANT)])

    def profile(u):  # the runner's own FLOP profile, with this grid's text lengths
        return cost_profile(
            u.rows,
            text_before=nb,
            tokens_per_frame=tpf,
            prefix_sharing=True,
            forward=forward,
            text_after=na + ans,
        )

    head = len(samples) * ans * shape.head_per_row()
    ours = sum(sum(profile(u)[0]) for u in units) + head
    old = per_length_schedule()
    per_group = sum(trie_flops(shape, [a for k, a in seqs if k == L])["flops"] for L in groups)
    glob = trie_flops(shape, [a for _, a in seqs])["flops"]
    print(
        "\n7B shapes on the real reference grid (FLOP model only; 144 tokens/frame, 100..2900 frames, "
        f"{len(samples)} samples, ~{nb}+{na} text tokens):"
    )
    print(f"  reference protocol        {ref:.3e} FLOPs")
    print(f"  per-length schedule (old) {old:.3e} FLOPs  (old / global floor = {old / (glob + head):.4f})")
    print(f"  ours (prefix schedule)    {ours:.3e} FLOPs  ({ref / ours:.2f}x below reference)")
    print(
        f"  floor, per-length trie    {per_group + head:.3e} FLOPs  (ours / floor = {ours / (per_group + head):.4f})"
    )
    print(f"  floor, global trie        {glob + head:.3e} FLOPs  (ours / floor = {ours / (glob + head):.4f})")
    print("  multi-rank split (contiguous ranges of the prefix-tree order, balanced by the FLOP model):")
    print(
        f"  {'ranks':>5s} {'sum over ranks':>15s} {'/ global floor':>15s} {'busiest rank':>13s} {'/ even share':>13s}"
    )
    for world in (1, 2, 4, 8):
        costs = split_cost(split_units(units, world, profile), profile)
        total = sum(costs) + head
        print(
            f"  {world:5d} {total:15.3e} {total / (glob + head):15.4f} {max(costs):13.3e} "
            f"{max(costs) / (sum(costs) / world):13.4f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="56x56", help="frame size HxW (56x56 → 4 tokens per frame)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs per protocol, alternating reference and ours; wall seconds are their median "
        "(a shared 2-core machine varies ±10%% between back-to-back runs; every run is printed)",
    )
    ap.add_argument("--child", nargs=4, metavar=("PROTOCOL", "DS", "CACHE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    from vniahd.evaluation import EvalConfig, Runner
    from vniahd.evaluation.planning.flops import ModelShape
    from vniahd.models import get_backend
    from vniahd.rope import get_variant

    with tempfile.TemporaryDirectory(prefix="vniahd-bench-eval-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        ds = build_dataset(root, args.size)
        be = get_backend(SPEC)
        runner = Runner(
            ds,
            be,
            EvalConfig(variants=[get_variant(VARIANT)], cache_dir=root / "cache", progress=False),
            root / "unused",
        )
        rows = runner.rows()
        runner.cache.haystack(ds.haystack_frames(), ds.haystack_key)  # fill the cache outside timings
        names = {n for r in rows for n in [r["needle_image"], *r["distractor_images"]]}
        runner.cache.images({n: ds.image(n) for n in names})
        tpf = runner.cache.tokens_per_frame
        nb = len(be.tokenizer.encode(runner.config.template.before))
        shape, big = ModelShape.from_backend(be), ModelShape(**SEVEN_B)
        print(
            f"dataset: {len(rows)} samples = 15 lengths (10..290 step 20) x 6 depths x 5 needles, "
            f"reference schedule, period 20, frames {args.size} -> {tpf} tokens/frame "
            f"(built in {time.perf_counter() - t0:.1f}s)"
        )
        print(f"model:   {SPEC}")
        print(f"  shapes tiny: {shape.to_dict()}")
        print(f"  shapes 7B:   {big.to_dict()}")
        seqs = sequences(runner, rows, tpf, nb, None)
        mean_ctx = sum(sum(n for _, n in a) for _, a in seqs) / len(seqs) / 2
        print(
            f"  LM head share of one token's FLOPs (linear only): tiny {shape.head_share():.4f}, "
            f"7B {big.head_share():.4f}"
        )
        print(
            f"  ... at this grid's mean context ({mean_ctx:.0f} keys): tiny {shape.head_share(mean_ctx):.4f}; "
            f"7B at the real grid's mean context (108,000 keys): {big.head_share(108_000):.4f}"
        )

        runs: dict[str, list[dict]] = {"reference": [], "ours": []}
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
        for rep in range(max(1, args.repeats)):
            for protocol in ("reference", "ours"):
                out = root / f"run{rep}"  # a fresh results directory per run (no resuming)
                out.mkdir(exist_ok=True)
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    protocol,
                    str(ds.path),
                    str(root / "cache"),
                    str(out),
                ]
                subprocess.run(cmd, check=True, env=env)
                f = json.loads((out / f"{protocol}.json").read_text())
                runs[protocol].append(f)
                print(
                    f"  {protocol:9s} run {rep + 1} done: {f['seconds']:.1f}s, peak RSS {f['peak_rss_mb']:.0f} MB",
                    flush=True,
                )

        def median_run(arm: list[dict]) -> dict:
            """The arm's run of median wall time (its figures; FLOPs and answers are the same in
            every run, checked below)."""
            return sorted(arm, key=lambda f: f["seconds"])[(len(arm) - 1) // 2]

        ref, ours = median_run(runs["reference"]), median_run(runs["ours"])
        for arm in runs.values():
            if any(f["answers"] != arm[0]["answers"] or f["flops"] != arm[0]["flops"] for f in arm):
                print("WARNING: runs of one protocol differ in answers or FLOPs")
        answer_rows = sum(len(be.tokenizer.encode(ds.needles[r["needle_id"]].answer)) for r in rows)
        fl = floors(shape, seqs, answer_rows)
        same = ref["answers"] == ours["answers"] and len(ours["answers"]) == len(rows)
        print(f"\n{'':26s} {'reference':>12s} {'ours':>12s} {'ratio ref/ours':>15s}")
        print(
            f"{'wall seconds':26s} {ref['seconds']:12.1f} {ours['seconds']:12.1f} {ref['seconds'] / ours['seconds']:15.2f}"
        )
        each = {k: " ".join(f"{f['seconds']:.1f}" for f in v) for k, v in runs.items()}
        best = min(f["seconds"] for f in runs["reference"]) / min(f["seconds"] for f in runs["ours"])
        print(
            f"  (median of {len(runs['ours'])} alternating runs; reference {each['reference']}; "
            f"ours {each['ours']}; ratio of the fastest runs {best:.2f})"
        )
        print(
            f"{'peak RSS MB, lifetime':26s} {ref['peak_rss_mb']:12.0f} {ours['peak_rss_mb']:12.0f} "
            f"{ref['peak_rss_mb'] / ours['peak_rss_mb']:15.2f}"
        )
        print(
            f"{'peak RSS MB, evaluation':26s} {ref['eval_peak_rss_mb']:12.0f} {ours['eval_peak_rss_mb']:12.0f} "
            f"{ref['eval_peak_rss_mb'] / ours['eval_peak_rss_mb']:15.2f}"
        )
        print(
            f"{'  growth over its start':26s} {ref['eval_peak_rss_mb'] - ref['rss_before_mb']:12.1f} "
            f"{ours['eval_peak_rss_mb'] - ours['rss_before_mb']:12.1f}"
        )
        print(
            f"{'largest logits tensor MB':26s} {ref['max_logits_bytes'] / 1e6:12.2f} {ours['max_logits_bytes'] / 1e6:12.4f}"
        )
        print(
            f"{'tokens fed':26s} {ref['tokens']:12d} {ours['tokens']:12d} {ref['tokens'] / ours['tokens']:15.2f}"
        )
        print(f"{'LM head rows':26s} {ref['head_rows']:12d} {ours['head_rows']:12d}")
        print(
            f"{'FLOPs (measured calls)':26s} {ref['flops']:12.3e} {ours['flops']:12.3e} {ref['flops'] / ours['flops']:15.2f}"
        )
        print(
            f"floor, per-length trie:    {fl['per_group']:.3e} FLOPs; ours / floor = {ours['flops'] / fl['per_group']:.4f}; "
            f"reference / floor = {ref['flops'] / fl['per_group']:.2f}"
        )
        print(
            f"floor, global trie:        {fl['global']:.3e} FLOPs; ours / floor = {ours['flops'] / fl['global']:.4f}"
        )
        print(
            f"our schedule targets the global trie (one prefix per variant and window offset, across "
            f"lengths); prefill chunk {ours['prefill_chunk']}, batch size {ours['batch_size']}"
        )
        if same:
            print(f"answers: identical ({len(rows)} samples: same correct and prediction)")
        else:
            diff = [k for k in ref["answers"] if ref["answers"][k] != ours["answers"].get(k)]
            print(f"answers: DIFFERENT for {len(diff)} samples, e.g. {diff[:5]}")
        seven_b_grid()
    return 0


if __name__ == "__main__":
    sys.exit(main())
