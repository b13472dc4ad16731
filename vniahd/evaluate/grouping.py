"""Sample order and groups: which samples can share a haystack prefix, in what order.

Samples of one haystack length and window offset read the same haystack frames before their first
inserted frame; ordered by that first inserted slot, each sample's shareable prefix contains the
previous one's (the order :mod:`vniahd.evaluate.prefix` extends its KV cache in).
"""

from __future__ import annotations

from typing import Iterable, Sequence


def first_inserted_slot(row: dict) -> int:
    slots = [int(row["needle_slot"])] + [int(s) for s in (row.get("distractor_slots") or [])]
    return min(slots)


def order_samples(rows: Iterable[dict]) -> list[dict]:
    """Group by length (ascending) and haystack window offset, then by first inserted slot, then
    sample id."""
    return sorted(rows, key=lambda r: (int(r["length"]), int(r.get("haystack_offset", 0) or 0),
                                       first_inserted_slot(r), str(r["sample_id"])))


def prefix_groups(rows: Sequence[dict]) -> list[tuple[tuple[int, int], list[dict]]]:
    """Consecutive ((length, offset), rows) groups of an ordered sample list: the samples that
    can share a haystack prefix."""
    groups: list[tuple[tuple[int, int], list[dict]]] = []
    for r in rows:
        key = (int(r["length"]), int(r.get("haystack_offset", 0) or 0))
        if groups and groups[-1][0] == key:
            groups[-1][1].append(r)
        else:
            groups.append((key, [r]))
    return groups


def length_groups(rows: Sequence[dict]) -> list[tuple[int, list[dict]]]:
    """Consecutive (length, rows) groups of an ordered sample list."""
    groups: list[tuple[int, list[dict]]] = []
    for r in rows:
        if groups and groups[-1][0] == int(r["length"]):
            groups[-1][1].append(r)
        else:
            groups.append((int(r["length"]), [r]))
    return groups
