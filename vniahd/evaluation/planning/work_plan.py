"""The work plan: which samples run in which order, in which groups, on which rank, in which
batches — pure functions of the dataset, the variants and the settings, never of what a results
directory already holds.

- **Order and groups.** Samples whose haystack window starts at the same offset feed identical
  tokens at identical positions for as long as their frame sequences agree, whatever their length
  (positions are causal: a frame's position does not depend on how many frames follow). Ordered
  lexicographically by frame sequence (:func:`order_samples`), consecutive samples share the
  longest possible prefix, and keeping each sample's common prefix with the next in the KV cache
  (:mod:`vniahd.evaluation.execution.prefix`) computes every node of the samples' prefix tree once per
  variant: the global floor. A work unit is one (variant, offset) group.
- **Shards.** Under several processes the run is cut into contiguous ranges of equal estimated
  FLOP cost (:func:`split_units`); every rank computes the same split from the full plan.
- **Batches.** Consecutive short samples of a group share a right-padded batch, or where the
  backend packs (CPU), consecutive samples of any length share one packed row. Batches are cut
  from the whole group, so a resumed run recomputes exactly the batches of an uninterrupted one
  (docs/footguns.md, "bitwise resume under batching").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vniahd.rope import Variant

#: ``batch_size="auto"``: grow a batch while (batch size × its longest suffix) stays within this
#: many tokens, up to :data:`AUTO_BATCH_MAX` samples — only short sequences batch (on a CPU the
#: per-call overhead of a tiny model dominates them; long ones gain nothing from batching).
AUTO_BATCH_TOKENS = 1024
AUTO_BATCH_MAX = 16
#: A batch may cost at most this share more tokens than running its members one by one on the
#: prefix-tree walk: its members' remainders start at the batch's common prefix (a member that
#: shares more with its predecessor recomputes the difference) and are right-padded to the longest.
AUTO_BATCH_MAX_EXTRA = 0.02
#: ``batch_size="auto"`` on a backend that packs (CPU): grow a pack while its pass (the shared
#: prefix it grows, then its members' remainders) feeds at most this many tokens (and the prefill
#: chunk), up to :data:`AUTO_PACK_MAX` samples. Packed segments carry no padding, so long
#: suffixes pack too: one model call instead of several saves ~4.5 ms of Python per call and
#: gives larger matrix products. On the 2-core bench (bench/eval_prefix.py's "ours" arm, medians
#: of 3 alternating runs) 2048 tokens beat 1024 by ~8 % and 4096 beat 2048 by ~6 %; 8192 was
#: ~3 % faster than 4096, within the noise, for 0.4 % more tokens recomputed at batch
#: boundaries and twice the activations.
AUTO_PACK_TOKENS = 4096
AUTO_PACK_MAX = 64


# ---- order and groups ---------------------------------------------------------------------------
def sequence_key(row: dict[str, Any]) -> tuple[tuple[int, Any], ...]:
    """What the sample's frame slots show, in order: ``(0, image name)`` for an inserted image,
    ``(1, i)`` for the i-th frame of the haystack window. Two samples at the same window offset
    feed identical tokens at identical positions exactly as long as their keys agree (positions
    are causal: a frame's position does not depend on how many frames follow)."""
    from vniahd.records import inserted_images

    inserted = inserted_images(row)
    key: list[tuple[int, Any]] = []
    i = 0
    for slot in range(int(row["num_frames"])):
        if slot in inserted:
            key.append((0, inserted[slot]))
        else:
            key.append((1, i))
            i += 1
    return tuple(key)


def common_frames(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the common prefix of two frame sequences (sequence keys or frame refs)."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def order_samples(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """By haystack window offset, then lexicographically by :func:`sequence_key` (inserted images
    before haystack frames, so first inserted slots ascend), then sample id. Lexicographic order is
    a depth-first walk of the prefix tree of all samples' frame sequences — every length together —
    so keeping each sample's common prefix with the next in the KV cache computes every tree node
    once: the global prefix-tree floor."""
    return sorted(
        rows,
        key=lambda r: (
            int(r.get("haystack_offset", 0) or 0),
            sequence_key(r),
            *_filler_key(r),
            str(r["sample_id"]),
        ),
    )


def _filler_key(row: dict[str, Any]) -> tuple[int, float, int]:
    """Stack samples of one clip by depth, then text budget: the samples with no filler before
    the clip (depth 0, or depth 1 under the released placement) come together and share it.
    Other rows get one constant key, which leaves their order as it was."""
    if str(row.get("task") or "niah") != "stack":
        return (0, 0.0, 0)
    return 1, float(row["depth"]), int(row.get("text_tokens", 0) or 0)


def prefix_groups(rows: Sequence[dict[str, Any]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """Consecutive (offset, rows) groups of an ordered sample list: the samples that can share a
    haystack prefix (all lengths together)."""
    groups: list[tuple[int, list[dict[str, Any]]]] = []
    for r in rows:
        key = int(r.get("haystack_offset", 0) or 0)
        if groups and groups[-1][0] == key:
            groups[-1][1].append(r)
        else:
            groups.append((key, [r]))
    return groups


def length_groups(rows: Sequence[dict[str, Any]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """(length, rows) per length, lengths ascending, rows in their given order."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(int(r["length"]), []).append(r)
    return sorted(groups.items())


@dataclass(frozen=True)
class WorkUnit:
    """Samples that share one KV prefix, run in order under one variant: a whole (variant,
    offset) group, or under several processes a contiguous part of one (see :func:`split_units`)."""

    key: tuple[int, int, int]  # (variant index, offset, index of the part's first sample in the group)
    variant: Variant
    rows: list[dict[str, Any]]

    @property
    def sample_ids(self) -> list[str]:
        return [str(r["sample_id"]) for r in self.rows]


def plan_units(rows: Sequence[dict[str, Any]], variants: Sequence[Variant]) -> list[WorkUnit]:
    """Every unit in run order: variants outer (one variant applied at a time), then offsets."""
    groups = prefix_groups(order_samples(rows))
    return [WorkUnit((vi, off, 0), v, grp) for vi, v in enumerate(variants) for off, grp in groups]


# ---- cost and shards ----------------------------------------------------------------------------
def cost_profile(
    rows: Sequence[dict[str, Any]],
    *,
    text_before: int,
    tokens_per_frame: int,
    prefix_sharing: bool,
    forward: Callable[[int, int], float] | None = None,
    text_after: int = 64,
) -> tuple[list[float], list[float]]:
    """Per sample of an ordered group: its marginal cost (the tokens it does not share with the
    previous sample, run on top of the shared ones; they sum to the group's cost) and the extra
    cost of *starting* a cache at it (recomputing the shared part from nothing). ``text_after``:
    tokens after the video (question and answer; 64 approximates the reference prompt); a stack
    sample's filler budget (``text_tokens``) counts too."""

    def tokens(n: int, past: int = 0) -> float:
        return float(n)

    cost = forward or tokens
    keys = [sequence_key(r) for r in rows]
    marginal, restart = [], []
    for j, r in enumerate(rows):
        filler = int(r.get("text_tokens", 0) or 0)  # the stack's filler text, about this many tokens
        seq = text_before + filler + int(r["num_frames"]) * tokens_per_frame + text_after
        shared = 0
        # the stack's samples share rows only when their filler before the clip is the same: the
        # plan cannot tell (it depends on the tokenizer), so it counts none shared
        if prefix_sharing and j > 0 and not filler:
            shared = text_before + common_frames(keys[j - 1], keys[j]) * tokens_per_frame
        marginal.append(cost(seq - shared, shared))
        restart.append(cost(shared, 0) if shared else 0.0)
    return marginal, restart


Profile = tuple[list[float], list[float]]


def split_units(
    units: Sequence[WorkUnit], world_size: int, profile: Callable[[WorkUnit], Profile]
) -> list[list[WorkUnit]]:
    """Cut the run into ``world_size`` contiguous shares of about equal cost.

    The units, in run order, form one sequence of samples; share r is the r-th contiguous range.
    A share that starts inside a group recomputes that group's prefix up to its first sample (the
    ``restart`` term of :func:`cost_profile`); nothing else is lost: each rank grows one cache per
    group part, in slot order. The cut points minimise the most expensive share (binary search
    over a cap, greedy filling). Every rank computes the same split from the full plan."""
    marginal: list[float] = []
    restart: list[float] = []
    where: list[tuple[int, int]] = []
    for ui, u in enumerate(units):
        m, r = profile(u)
        marginal += m
        restart += [0.0] + r[1:]  # a unit's first sample starts from nothing in every schedule
        where += [(ui, j) for j in range(len(u.rows))]
    if world_size <= 1 or not where:
        return [list(units)] + [[] for _ in range(max(0, world_size - 1))]

    def starts_under(cap: float) -> list[int] | None:
        starts, load = [0], restart[0] + marginal[0]
        for j in range(1, len(where)):
            if load + marginal[j] > cap:
                starts.append(j)
                if len(starts) > world_size:
                    return None
                load = restart[j] + marginal[j]
            else:
                load += marginal[j]
        return starts

    lo, hi = sum(marginal) / world_size, sum(marginal) + sum(restart)
    best = starts_under(hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        starts = starts_under(mid)
        if starts is not None:
            best, hi = starts, mid
        else:
            lo = mid
    assert best is not None
    bounds = best + [len(where)]
    shares: list[list[WorkUnit]] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        share: list[WorkUnit] = []
        for ui in sorted({where[i][0] for i in range(a, b)}):
            ks = [where[i][1] for i in range(a, b) if where[i][0] == ui]
            u = units[ui]
            share.append(WorkUnit((u.key[0], u.key[1], ks[0]), u.variant, u.rows[ks[0] : ks[-1] + 1]))
        shares.append(share)
    return shares + [[] for _ in range(world_size - len(shares))]


def split_cost(shares: Sequence[Sequence[WorkUnit]], profile: Callable[[WorkUnit], Profile]) -> list[float]:
    """Cost of each share as its rank runs it (every part grows its own cache from nothing)."""
    return [sum(sum(profile(u)[0]) for u in share) for share in shares]


def my_units(
    units: Sequence[WorkUnit], rank: int, world_size: int, profile: Callable[[WorkUnit], Profile]
) -> list[WorkUnit]:
    """This rank's share of ``units`` (:func:`split_units`)."""
    if world_size <= 1:
        return list(units)
    return split_units(units, world_size, profile)[rank]


# ---- batches ------------------------------------------------------------------------------------
def cut_batches(
    lengths: Sequence[int],
    batchable: Sequence[bool],
    shared_prev: Sequence[int],
    batch_size: int | str,
    pack_tokens: int = 0,
) -> list[list[int]]:
    """Cut a group's samples (by index, in order) into batches.

    ``lengths[i]``: tokens of sample i's prompt and answer; ``batchable[i]``: whether its scoring
    mode can share a batch; ``shared_prev[i]``: the tokens sample i shares with sample i−1 (0 for
    the first, and for all without prefix sharing). A batch runs every member's remainder from
    the batch's common prefix (the least share inside it), so a member that shares more with its
    predecessor recomputes the difference, and shorter remainders are padded. With
    ``batch_size="auto"`` a sample joins a batch only while both together stay within
    :data:`AUTO_BATCH_MAX_EXTRA` of the batch's own work and (size × longest remainder) ≤
    :data:`AUTO_BATCH_TOKENS`, up to :data:`AUTO_BATCH_MAX` samples; a number batches consecutive
    batchable samples up to that size, whatever the waste.

    ``pack_tokens`` > 0: the backend packs a batch's remainders as segments of one row (no
    padding), after the part of the common prefix the cache lacks (grown along the first member
    in the same pass; the walk's cache holds what the previous batch's first member shares with
    this one, see :meth:`vniahd.evaluation.execution.prefix.SharedPrefix.plan`); that pass may feed at most
    ``pack_tokens``. ``"auto"`` then allows
    :data:`AUTO_PACK_MAX` members within :data:`AUTO_BATCH_MAX_EXTRA` of recomputation."""
    packing = pack_tokens > 0
    if batch_size == "auto":
        limit = AUTO_PACK_MAX if packing else AUTO_BATCH_MAX
    else:
        limit = int(batch_size)
    out: list[list[int]] = []
    cur: list[int] = []

    def held(first: int) -> int:
        """Tokens the walk's cache holds when a batch starting at ``first`` begins: what the
        previous batch's first member shares with every sample up to ``first`` (the previous
        batch keeps what its first member shares with the sample after it)."""
        if not out:
            return 0
        return min(shared_prev[j] for j in range(out[-1][0] + 1, first + 1))

    def fits(trial: list[int]) -> bool:
        common = min(shared_prev[j] for j in trial[1:])
        own = sum(lengths[j] - shared_prev[j] for j in trial)
        longest = max(lengths[j] - common for j in trial)
        recomputed = sum(max(0, shared_prev[j] - common) for j in trial)
        if len(trial) > limit:
            return False
        if packing:  # one pass feeds the common prefix the cache lacks, then every remainder
            head = max(0, common - held(trial[0]))
            if head + sum(lengths[j] - common for j in trial) > pack_tokens:
                return False
            return batch_size != "auto" or recomputed <= AUTO_BATCH_MAX_EXTRA * own
        padding = sum(longest - (lengths[j] - common) for j in trial)  # right padding to the longest
        if batch_size != "auto":
            return True  # an explicit size: batch regardless of the waste
        return (
            recomputed + padding <= AUTO_BATCH_MAX_EXTRA * own and len(trial) * longest <= AUTO_BATCH_TOKENS
        )

    for i in range(len(lengths)):
        ok = limit > 1 and batchable[i]
        if cur and ok and fits(cur + [i]):
            cur.append(i)
            continue
        if cur:
            out.append(cur)
        cur = [i] if ok else []
        if not ok:
            out.append([i])
    if cur:
        out.append(cur)
    return out
