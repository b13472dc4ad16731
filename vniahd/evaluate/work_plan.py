"""The work plan: which samples run in which order, in which groups, on which rank, in which
batches — pure functions of the dataset, the variants and the settings, never of what a results
directory already holds.

- **Order and groups.** Samples of one haystack length and window offset read the same haystack
  frames before their first inserted frame (needle or distractor). Ordered by that first inserted
  slot, each sample's shareable prefix contains the previous one's: the order in which
  :mod:`vniahd.evaluate.prefix` extends its KV cache. A work unit is one (variant, length,
  offset) group.
- **Shards.** Under several processes every rank computes the same assignment of units from the
  full plan (:func:`my_units`), balanced by an estimated FLOP cost.
- **Batches.** Consecutive short samples of a group share a right-padded batch. Batches are cut
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


# ---- order and groups ---------------------------------------------------------------------------
def first_inserted_slot(row: dict[str, Any]) -> int:
    """The sample's first non-haystack frame slot (needle or distractor)."""
    slots = [int(row["needle_slot"])] + [int(s) for s in (row.get("distractor_slots") or [])]
    return min(slots)


def order_samples(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group by length (ascending) and haystack window offset, then by first inserted slot, then
    sample id."""
    return sorted(rows, key=lambda r: (int(r["length"]), int(r.get("haystack_offset", 0) or 0),
                                       first_inserted_slot(r), str(r["sample_id"])))


def prefix_groups(rows: Sequence[dict[str, Any]]) -> list[tuple[tuple[int, int], list[dict[str, Any]]]]:
    """Consecutive ((length, offset), rows) groups of an ordered sample list: the samples that
    can share a haystack prefix."""
    groups: list[tuple[tuple[int, int], list[dict[str, Any]]]] = []
    for r in rows:
        key = (int(r["length"]), int(r.get("haystack_offset", 0) or 0))
        if groups and groups[-1][0] == key:
            groups[-1][1].append(r)
        else:
            groups.append((key, [r]))
    return groups


def length_groups(rows: Sequence[dict[str, Any]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """Consecutive (length, rows) groups of an ordered sample list."""
    groups: list[tuple[int, list[dict[str, Any]]]] = []
    for r in rows:
        if groups and groups[-1][0] == int(r["length"]):
            groups[-1][1].append(r)
        else:
            groups.append((int(r["length"]), [r]))
    return groups


@dataclass(frozen=True)
class WorkUnit:
    """One (variant, length, offset) group: the unit of prefix sharing and of sharding."""

    key: tuple[int, int, int]  # (variant index, length, offset)
    variant: Variant
    rows: list[dict[str, Any]]

    @property
    def sample_ids(self) -> list[str]:
        return [str(r["sample_id"]) for r in self.rows]


def plan_units(rows: Sequence[dict[str, Any]], variants: Sequence[Variant]) -> list[WorkUnit]:
    """Every unit in run order: variants outer (one variant applied at a time), then groups."""
    groups = prefix_groups(order_samples(rows))
    return [WorkUnit((vi, length, off), v, grp)
            for vi, v in enumerate(variants) for (length, off), grp in groups]


# ---- cost and shards ----------------------------------------------------------------------------
def group_cost(rows: Sequence[dict[str, Any]], *, text_before: int, tokens_per_frame: int,
               prefix_sharing: bool, forward: Callable[[int, int], float] | None = None) -> float:
    """FLOPs of a group under the prefix-shared schedule (approximate text lengths); ``forward(n,
    past)`` is the model's FLOP model (token count when ``None``)."""
    def tokens(n: int, past: int = 0) -> float:
        return float(n)

    cost = forward or tokens
    total, prefix = 0.0, 0
    for r in rows:
        first = text_before + first_inserted_slot(r) * tokens_per_frame if prefix_sharing else 0
        seq = text_before + int(r["num_frames"]) * tokens_per_frame + 64  # ≈ question + answer
        if first > prefix:
            total += cost(first - prefix, prefix)
            prefix = first
        total += cost(seq - first, first)
    return total


def my_units(units: Sequence[WorkUnit], rank: int, world_size: int,
             cost: Callable[[WorkUnit], float]) -> list[WorkUnit]:
    """This rank's share of ``units`` (every rank computes the same split from the full plan)."""
    if world_size <= 1:
        return list(units)
    from vniahd.evaluate.distributed import assign

    shares = assign([(u.key, cost(u)) for u in units], world_size)
    mine = set(shares[rank])
    return [u for u in units if u.key in mine]


# ---- batches ------------------------------------------------------------------------------------
def cut_batches(lengths: Sequence[int], batchable: Sequence[bool], prefixes: Sequence[int],
                batch_size: int | str) -> list[list[int]]:
    """Cut a group's samples (by index, in order) into batches.

    ``lengths[i]``: tokens of sample i's prompt and answer; ``batchable[i]``: whether its scoring
    mode can share a batch; ``prefixes[i]``: the shared-prefix tokens before sample i's first
    inserted frame (0 without prefix sharing) — a batch's suffixes are measured from its first
    sample's prefix. With ``batch_size="auto"`` a batch grows while (size × longest suffix) ≤
    :data:`AUTO_BATCH_TOKENS`, up to :data:`AUTO_BATCH_MAX`; a number is a fixed cap."""
    limit = AUTO_BATCH_MAX if batch_size == "auto" else int(batch_size)
    out: list[list[int]] = []
    cur: list[int] = []
    for i in range(len(lengths)):
        ok = limit > 1 and batchable[i]
        if cur and ok:
            trial = cur + [i]
            longest = max(lengths[j] - prefixes[trial[0]] for j in trial)
            fits = len(trial) <= limit and (batch_size != "auto" or len(trial) * longest <= AUTO_BATCH_TOKENS)
            if fits:
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
