"""The family registry: :data:`FAMILIES` and its lookups (filled by the package's ``__init__``)."""

from __future__ import annotations

from vniahd.errors import VniahdError
from vniahd.models.families._record import FamilyRecord

#: ``model_type`` → record, in the order they are listed to users.
FAMILIES: dict[str, FamilyRecord] = {}


def register_family(record: FamilyRecord, *, replace: bool = False) -> FamilyRecord:
    """Add ``record`` to the registry (``replace=True`` overwrites one with its ``model_type``).
    Its model types, ``random:`` alias and ``backend.family`` spellings must not collide with
    another family's."""
    for other in FAMILIES.values():
        if other.model_type == record.model_type and replace:
            continue
        taken = set(other.backend_families) | {other.random_alias}
        mine = set(record.backend_families) | {record.random_alias}
        if taken & mine:
            raise VniahdError(
                f"family {record.name} ({record.model_type}) collides with {other.name} on "
                f"{sorted(taken & mine)}"
            )
    FAMILIES[record.model_type] = record
    return record


def unregister_family(model_type: str) -> None:
    FAMILIES.pop(model_type, None)


def by_model_type(model_type: object) -> FamilyRecord | None:
    return next((r for r in FAMILIES.values() if model_type in r.all_model_types), None)


def by_random_alias(alias: str) -> FamilyRecord | None:
    return next((r for r in FAMILIES.values() if r.random_alias == alias), None)


def by_backend_family(name: str) -> FamilyRecord | None:
    return next((r for r in FAMILIES.values() if name in r.backend_families), None)


def random_aliases() -> list[str]:
    return [r.random_alias for r in FAMILIES.values()]
