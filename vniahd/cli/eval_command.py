"""``vniahd eval``: score a model on a dataset under one or more RoPE variants (resumable)."""

from __future__ import annotations

import argparse
import sys
import time

from vniahd.cli.model_args import PROMPT_HELP, add_dtype, add_frame_mode_and_template, add_prompt

ORDER = 40

EVAL_EPILOG = """\
model specs:
  hf:PATH                 a local checkpoint (transformers format) of a supported family: Qwen2-VL,
                          Qwen2.5-VL, Qwen3-VL(-MoE) (DeepStack included), Qwen3.5(-MoE), GLM-4.1V,
                          GLM-4.5V; any other model_type is refused, naming these
  random:FAMILY           random weights from a config built in code (tests, benchmarks), FAMILY one
                          of qwen2-vl, qwen2.5-vl, qwen3-vl, qwen3-vl-moe, qwen3.5, qwen3.5-moe,
                          glm-4.1v, glm-4.5v; sizes as ?layers=2&hidden=64&heads=4&kv_heads=2&vocab=512
                          &theta=1e4 (MoE: &experts=4&experts_active=2), or ?size=7b for 7B shapes
                          (use --device cuda). Qwen3.5: recurrent layers, so no prefix sharing
  tiny                    the embedded default (trained per variant; see 'vniahd demo')

scoring modes:
  reference   teacher-forced answer tokens; correct iff the argmax at every answer position is
              the answer token (the published V-NIAH-D protocol)
  choice      log-likelihood of each option letter, argmax (short-answer needles fall back to
              reference, recorded as 'fallback')
  generate    greedy decoding (--max-new-tokens), answer parsed from the text (raw text kept)

frames: one dataset frame is one temporal group of visual tokens (the frame repeated to fill the
model's temporal patch, as the Qwen2-VL image processor and the reference code do). --frame-mode
video lays the frames out as one video (the protocol); image lays them out as separate images.

native positions and prompt:
  --variant native   the model family's own positions and frequency allocation, as its authors'
                     code computes them: Qwen2-VL mrope (text after a video at max(T,H,W), not
                     transformers 5.x's max(H,W)), Qwen2.5-VL mrope-timed (tokens_per_second from
                     the model, seconds per group from the dataset's fps), Qwen3-VL / Qwen3.5 /
                     GLM-4.1V mrope-frames (each frame its own grid); the model's own sections.
                     run.json records what it resolved to (variants.native).
  --prompt native    the video as the family's chat template + processor write it: Qwen2-VL /
                     Qwen2.5-VL <|vision_start|>video<|vision_end|>; Qwen3-VL / Qwen3.5
                     <t seconds><|vision_start|>frame<|vision_end|> per frame; GLM-4.1V
                     <|begin_of_video|> … <|begin_of_image|>frame<|end_of_image|>SECONDS …
                     <|end_of_video|>. Recorded in run.json (prompt_layout); results of the two
                     layouts never share a results directory.

Results: OUT/results.jsonl (one line per sample, variant and scoring mode; each line flushed,
fsync'd within a second) and
OUT/run.json (provenance). Rerunning the same command resumes; frame embeddings are cached
under $VNIAHD_CACHE/embeddings (shared by all variants), so a rerun encodes nothing.

at scale (all on by default; results agree to float tolerance either way, and a resume keeps
the first run's batch size, prefill chunk and prefix-sharing setting, so its lines are bit-identical):
  prefix sharing   samples whose haystack window starts at the same offset feed the same tokens
                   for as long as their frame sequences agree, whatever their length: run in
                   prefix-tree order, one KV cache walks the tree, so every shared frame is
                   computed once per variant, and each sample's remainder runs on top of it.
                   --no-prefix-sharing evaluates every sample from scratch (the reference
                   protocol's cost).
  chunked prefill  --prefill-chunk TOKENS feeds long sequences TOKENS at a time into the KV cache,
                   so activation memory is bounded by the chunk, not the sequence (auto: 4096 on
                   CUDA, 8192 on CPU; 0 = one pass).
  batching         --batch-size N|auto runs consecutive samples of one group in one forward
                   pass. On a CPU their remainders are packed into one row (each attends to the
                   shared cache and itself, no padding; auto: up to 64 samples and 4096 tokens
                   in the pass, which also grows the shared prefix); on other devices short
                   samples share a right-padded batch (auto: while batch x longest remainder
                   <= 1024 tokens, up to 16). Either way recomputing shared tokens is held to
                   2% of the batch's work.
  multi-process    torchrun --nproc-per-node K -m vniahd eval ... (or accelerate launch): each rank
                   takes a contiguous range of the prefix-tree order (balanced by estimated
                   FLOPs, recomputing only the prefix where its range starts), uses cuda:LOCAL_RANK,
                   and appends to OUT/results.rank{K}.jsonl; rank 0 writes run.json. The results
                   directory reads as one; rerun the same command to resume (any world size).
  bigger than one GPU
                   --device-map auto (or balanced, or a JSON map {"model.visual": 0,
                   "model.language_model.layers.0": 0, ..., "lm_head": 1}) loads an hf:PATH
                   checkpoint across this machine's GPUs with transformers/accelerate; inputs go
                   where embed_tokens is, results come back as on one device, run.json records
                   the placement. Not with --device. Under torchrun each of the K ranks on a
                   machine owns GPUs/K of them (GPU indices in a JSON map count within them).
  memory           the LM head runs on scored rows only; haystack embeddings stay in a host
                   memmap. Each result line records peak_mem_bytes: CUDA max_memory_allocated
                   during the sample, or on CPU the process's peak RSS during it (Linux).

example:
  vniahd eval --dataset data/demo-ref --model random:qwen2-vl --variant vanilla --variant tad \\
      --variant mrope --variant videorope --out results/demo-random
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a model on a dataset under RoPE variants (resumable)",
        description="Evaluate a video-language model on a V-NIAH(-D) dataset directory under "
        "one or more RoPE variants; append one result line per sample.",
        epilog=EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset", required=True, metavar="DIR", help="dataset directory (from 'vniahd generate')"
    )
    p.add_argument("--model", required=True, metavar="SPEC", help="model spec (see below)")
    p.add_argument(
        "--variant",
        action="append",
        required=True,
        metavar="NAME",
        help="RoPE variant, repeatable: a preset (vanilla, tad, mrope, videorope, …; "
        "'vniahd variants' lists them), native (the model family's own positions and "
        "allocation; see below), NAME:key=value overrides, LAYOUT+ALLOCATION, or a JSON file",
    )
    p.add_argument(
        "--scoring",
        default="reference",
        choices=["reference", "choice", "generate"],
        help="scoring mode (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="RESULTS_DIR",
        help="results directory (created; resumed if it exists)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="evaluate only the first N samples of the dataset (in dataset order)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cpu)")
    p.add_argument(
        "--device-map",
        default=None,
        metavar="auto|balanced|JSON",
        help="spread an hf:PATH checkpoint over this machine's GPUs instead of --device: "
        "auto, balanced, balanced_low_0, sequential (accelerate's placement), or a JSON file / "
        'inline JSON mapping module names to a GPU index or "cpu" (see below)',
    )
    add_dtype(p)
    add_frame_mode_and_template(p)
    add_prompt(p, PROMPT_HELP[:-1] + "; see below)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=8,
        metavar="N",
        help="generate mode: greedy decoding limit (default: %(default)s)",
    )
    p.add_argument(
        "--encode-batch",
        type=int,
        default=16,
        metavar="N",
        help="frames per vision-encoder call when filling the cache (default: %(default)s)",
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="embedding cache root (default: $VNIAHD_CACHE/embeddings)",
    )
    p.add_argument(
        "--no-prefix-sharing",
        action="store_true",
        help="evaluate every sample from scratch instead of reusing the KV cache of the "
        "haystack prefix that samples of one length share (see below)",
    )
    p.add_argument(
        "--prefill-chunk",
        default="auto",
        metavar="TOKENS|auto",
        help="tokens per forward call when filling the KV cache (auto: 4096 on CUDA, "
        "8192 on CPU; 0 = whole sequence at once)",
    )
    p.add_argument(
        "--batch-size",
        default="auto",
        metavar="N|auto",
        help="samples per forward pass (auto: on a CPU, packed up to 64 samples / 4096 tokens per "
        "pass; elsewhere padded while batch x longest remainder <= 1024 tokens; 1 = no batching)",
    )
    p.add_argument(
        "--attention-scope",
        default="full",
        metavar="full|zigzag-local:W",
        help="what the scored rows attend to: full (default, ordinary causal attention) or "
        "zigzag-local:W, the released V-NIAH-D / V-RULER harness's actual view on Qwen models: "
        "the sequence cut into 2W chunks, each row seeing only the two chunks of its own process "
        "(W = 8 in the release). Needs --scoring reference; one sample per pass, no prefix "
        "sharing. See docs/reference-protocol.md",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from vniahd._api import prepare_evaluation
    from vniahd.evaluation.config import EvalConfig
    from vniahd.evaluation.planning import distributed

    started = time.perf_counter()  # the run's wall time starts before the model loads
    config = EvalConfig.from_args(args)  # every option checked before anything is opened
    info = distributed.from_env()
    prepared = prepare_evaluation(
        args.dataset,
        args.model,
        config,
        out=args.out,
        device=args.device,
        dtype=args.dtype,
        frame_mode=args.frame_mode,
        device_map=args.device_map,
        dist=info,
    )
    runner, backend, load_s = prepared.runner, prepared.backend, prepared.load_seconds
    try:
        summary = runner.run()
    finally:
        distributed.shutdown(info)
    stats = runner.cache.stats
    if not info.is_main:
        return 0  # rank 0 prints the summary of the whole run

    err = sys.stderr
    print(
        f"model {backend.spec} loaded in {load_s:.1f}s; frames encoded this run: "
        f"{stats.frames_encoded} (haystack {stats.haystack_frames_encoded}, images "
        f"{stats.images_encoded}); encoding took {runner.timings.get('encode', 0.0):.1f}s",
        file=err,
    )
    print(
        f"scoring: {args.scoring}   frame mode: {backend.options.frame_mode}   tokens/frame: "
        f"{runner.cache.tokens_per_frame}",
        file=sys.stdout,
    )
    width = max([len(v) for v in summary] + [7])
    print(f"{'variant':<{width}}  accuracy  correct/total  scored now  scoring s", file=sys.stdout)
    for name, d in summary.items():
        print(
            f"{name:<{width}}  {d['accuracy']:8.3f}  {d['correct']:>7}/{d['total']:<5}  "
            f"{runner.counts.get(name, 0):>10}  {runner.timings.get(name, 0.0):9.1f}",
            file=sys.stdout,
        )
    scoring_s = sum(runner.timings.get(name, 0.0) for name in summary)
    print(
        f"wall time {time.perf_counter() - started:.1f} s (model load {load_s:.1f} s, encoding "
        f"{runner.timings.get('encode', 0.0):.1f} s, scoring {scoring_s:.1f} s)",
        file=sys.stdout,
    )
    shards = "results.rank*.jsonl" if info.enabled else "results.jsonl"
    print(f"results: {args.out}/{shards}  provenance: {args.out}/run.json", file=sys.stdout)
    return 0
