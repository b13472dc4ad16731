"""Per-variant training of the tiny video LM.

Every variant trains on the same episodes (:class:`EpisodeSampler`, seeded by ``seed``), from the
same initial weights (``torch.manual_seed(seed)`` before building the model), for the same steps:
only the RoPE variant — positions from ``Variant.positions`` and the allocation installed with
``install_allocation`` — differs. The loss is next-token cross-entropy on the answer tokens only.
Optimiser: AdamW, linear warm-up over the first ``warmup`` fraction of steps, then cosine decay to
zero (as in the tiny model's feasibility prototype: lr 1e-3, 5 % warm-up, batch 32, 2000 steps).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from vniahd.files import sha256_json
from vniahd.models.tiny.model import TinyConfig, TinyVideoLM
from vniahd.models.tiny.sequence import PromptFormat, encode_pieces, positions
from vniahd.models.tiny.vocab import option_parts
from vniahd.training.episodes import Episode, EpisodeSampler


@dataclass(frozen=True)
class TrainConfig:
    """Everything besides the data and the variant that decides the trained weights."""

    seed: int = 0
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    length: int = 16
    min_length: int = 4
    length_ramp: float = 0.5
    #: fraction of episodes with a distractor card. 0.8, not 0.5: only distractor episodes reward
    #: reading the card colour, and at 0.5 the 3-layer model sometimes never learnt to (needle vs
    #: distractor 50/50 on held-out cards).
    distractor_prob: float = 0.8
    #: fraction of episodes asking the same question without options (answer: the object word).
    #: An auxiliary task that teaches the card lookup on its own. Found necessary before options
    #: became single tokens (multiple choice alone stayed at chance for 1000+ steps); kept since
    #: it costs no time and the recipe passes acceptance with it.
    short_answer_prob: float = 0.25
    model: TinyConfig = field(default_factory=TinyConfig)
    prompt: PromptFormat = field(default_factory=PromptFormat)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["prompt"] = self.prompt.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["model"] = TinyConfig.from_dict(d["model"])
        d["prompt"] = PromptFormat(**d["prompt"])
        return cls(**d)


def lr_factor(step: int, steps: int, warmup: float) -> float:
    """Linear warm-up to 1 over ``ceil(warmup·steps)`` steps, then cosine to 0 at ``steps``."""
    w = max(1, math.ceil(warmup * steps))
    if step < w:
        return (step + 1) / w
    t = (step - w) / max(1, steps - w)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


@dataclass
class Batch:
    embeds_parts: list  # per sample: (before ids, feature tensor, after+answer ids)
    position_ids: torch.Tensor  # [K, B, S]
    lengths: list[int]
    target_rows: torch.Tensor  # [B, K] rows predicting the answer tokens
    targets: torch.Tensor  # [B, K]
    target_mask: torch.Tensor  # [B, K]
    unique_features: torch.Tensor  # [U, T, 1320] each distinct frame of the batch once
    frame_index: torch.Tensor  # [B, Fmax] row of unique_features for each frame slot (pad: 0)
    frames: list[int]


def collate(
    episodes: list[Episode], data, tokenizer, fmt: PromptFormat, variant, model_cfg: TinyConfig
) -> Batch:
    """Token ids, features and positions of a batch (right-padded; causal attention means the
    padding after a sequence never influences it)."""
    grid = model_cfg.grid
    parts, pos, lens, rows, tg = [], [], [], [], []
    fmax = max(len(e.frames) for e in episodes)
    # Episodes of a batch share most haystack frames: project each distinct frame once.
    n_hay = len(data.haystack)
    tpf = model_cfg.tokens_per_frame
    bank_ids = torch.zeros(len(episodes), fmax, dtype=torch.long)
    for i, e in enumerate(episodes):
        bank_ids[i, : len(e.frames)] = torch.tensor([r if k == "h" else n_hay + r for k, r in e.frames])
    uniq, frame_index = torch.unique(bank_ids, return_inverse=True)
    is_card = uniq >= n_hay
    unique_features = torch.empty(len(uniq), *data.haystack.shape[1:])
    unique_features[~is_card] = data.haystack[uniq[~is_card]]
    unique_features[is_card] = data.cards[uniq[is_card] - n_hay]
    for e in episodes:
        p = encode_pieces(tokenizer, fmt, e.question, e.answer)
        f = len(e.frames)
        na = len(p.after) + len(p.answer)
        pos.append(positions(variant, len(p.before), f, grid, na))
        s = len(p.before) + f * tpf + len(p.after)
        lens.append(s + len(p.answer))
        rows.append([s - 1 + j for j in range(len(p.answer))])
        tg.append(list(p.answer))
        parts.append((p.before, f, p.after + p.answer))
    smax = max(lens)
    position_ids = torch.zeros(pos[0].shape[0], len(episodes), smax)  # K position streams
    for i, pp in enumerate(pos):
        position_ids[:, i, : pp.shape[1]] = pp
        if pp.shape[1] < smax:  # padding continues the text positions (never attended to)
            position_ids[:, i, pp.shape[1] :] = pp[:, -1:] + torch.arange(1, smax - pp.shape[1] + 1)
    k = max(len(r) for r in rows)
    target_rows = torch.zeros(len(episodes), k, dtype=torch.long)
    targets = torch.zeros(len(episodes), k, dtype=torch.long)
    mask = torch.zeros(len(episodes), k, dtype=torch.bool)
    for i, (r, t) in enumerate(zip(rows, tg)):
        target_rows[i, : len(r)] = torch.tensor(r)
        targets[i, : len(t)] = torch.tensor(t)
        mask[i, : len(t)] = True
    return Batch(
        parts,
        position_ids,
        lens,
        target_rows,
        targets,
        mask,
        unique_features,
        frame_index,
        [len(e.frames) for e in episodes],
    )


def embed_batch(model: TinyVideoLM, batch: Batch) -> torch.Tensor:
    """[B, S, d] input embeddings: text embeddings around the projected frame features."""
    tpf = model.config.tokens_per_frame
    projected = model.embed_frames(batch.unique_features)  # [U, T, d]
    visual = projected[batch.frame_index].flatten(1, 2)  # [B, Fmax*T, d]
    smax = max(batch.lengths)
    rows = []
    for i, (before, f, after) in enumerate(batch.embeds_parts):
        pieces = []
        if before:
            pieces.append(model.embed_text(torch.tensor(before)))
        pieces.append(visual[i, : f * tpf])
        pieces.append(model.embed_text(torch.tensor(after)))
        x = torch.cat(pieces)
        if x.shape[0] < smax:
            x = torch.cat([x, x.new_zeros(smax - x.shape[0], x.shape[1])])
        rows.append(x)
    return torch.stack(rows)


def batch_loss(model: TinyVideoLM, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean answer-token cross-entropy, per-sample all-answer-tokens-correct [B] bool)."""
    hidden = model.hidden_states(embed_batch(model, batch), batch.position_ids)
    logits = model.logits_at(hidden, batch.target_rows)  # [B, K, V]
    loss = F.cross_entropy(logits[batch.target_mask], batch.targets[batch.target_mask])
    hit = (logits.argmax(-1) == batch.targets) | ~batch.target_mask
    return loss, hit.all(-1)


@dataclass
class TrainResult:
    model: TinyVideoLM
    losses: list[float]
    accuracies: list[float]
    seconds: float
    steps: int


def build_model(
    cfg: TrainConfig, vocab_size: int, variant, vocab: dict[str, int] | None = None
) -> TinyVideoLM:
    """Fresh weights from ``cfg.seed`` (identical for every variant), variant installed;
    ``vocab`` (word → id) makes option tokens compositional (:func:`option_parts`)."""

    torch.manual_seed(cfg.seed)
    model = TinyVideoLM(cfg.model, vocab_size, token_parts=option_parts(vocab) if vocab else None)
    model.set_variant(variant)
    return model


def train(
    cfg: TrainConfig,
    variant,
    data,
    tokenizer,
    *,
    progress: bool = True,
    log_every: int = 50,
    on_log: Callable[[int, float, float], None] | None = None,
    model: TinyVideoLM | None = None,
) -> TrainResult:
    """Train a tiny model for ``variant`` on ``data``; deterministic given ``cfg.seed``."""
    # Bitwise reproducible across processes: with 2+ threads some CPU backward kernels reduce in
    # a scheduling-dependent order; two runs of the same seed then drifted apart (1e-7 after 30
    # steps) and ended as different models — one held-out 16-frame accuracy 0.89, the other 0.47.
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _train(
            cfg, variant, data, tokenizer, progress=progress, log_every=log_every, on_log=on_log, model=model
        )
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def _train(cfg, variant, data, tokenizer, *, progress, log_every, on_log, model) -> TrainResult:
    from tqdm.auto import tqdm

    if model is None:
        vocab = tokenizer_vocab(tokenizer)
        model = build_model(cfg, len(vocab), variant, vocab)
    model.train()
    sampler = EpisodeSampler(
        data,
        length=cfg.length,
        min_length=cfg.min_length,
        distractor_prob=cfg.distractor_prob,
        short_answer_prob=cfg.short_answer_prob,
        instruction=cfg.prompt.instruction,
        seed=cfg.seed,
        total_steps=cfg.steps,
        ramp=cfg.length_ramp,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.steps, cfg.warmup))
    losses, accs = [], []
    run_loss = run_acc = None
    t0 = time.perf_counter()
    bar = tqdm(
        range(cfg.steps), desc=f"train tiny [{variant.name}]", unit="step", disable=not progress, leave=False
    )
    for step in bar:
        batch = collate(sampler.batch(step, cfg.batch_size), data, tokenizer, cfg.prompt, variant, cfg.model)
        loss, hit = batch_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        lv, av = float(loss.detach()), float(hit.float().mean())
        losses.append(lv)
        accs.append(av)
        run_loss = lv if run_loss is None else 0.95 * run_loss + 0.05 * lv
        run_acc = av if run_acc is None else 0.95 * run_acc + 0.05 * av
        if step % 10 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{run_loss:.3f}", acc=f"{run_acc:.2f}", lr=f"{sched.get_last_lr()[0]:.1e}")
        if on_log and (step % log_every == 0 or step == cfg.steps - 1):
            on_log(step, run_loss, run_acc)
    bar.close()
    model.eval()
    return TrainResult(model, losses, accs, time.perf_counter() - t0, cfg.steps)


def tokenizer_vocab(tokenizer) -> dict:
    inner = getattr(tokenizer, "tokenizer", tokenizer)
    return inner.get_vocab(with_added_tokens=True)


def config_key(cfg: TrainConfig, variant, data_key: str, vocab_words: list[str]) -> str:
    """Checkpoint key: hash of the training config, the variant, the data and the vocabulary."""
    return sha256_json(
        {
            "train": cfg.to_dict(),
            "variant": variant.to_dict(),
            "data": data_key,
            "vocab": vocab_words,
            "format": 2,
        }
    )[:16]  # 2: deterministic kernels


def describe(result: TrainResult) -> dict:
    tail = max(1, len(result.losses) // 20)
    return {
        "seconds": round(result.seconds, 2),
        "steps": result.steps,
        "seconds_per_step": round(result.seconds / max(1, result.steps), 4),
        "final_loss": sum(result.losses[-tail:]) / tail,
        "final_train_accuracy": sum(result.accuracies[-tail:]) / tail,
        "loss_curve": [round(v, 4) for v in result.losses[:: max(1, len(result.losses) // 100)]],
    }


__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "build_model",
    "collate",
    "batch_loss",
    "lr_factor",
    "config_key",
    "describe",
    "json",
]
