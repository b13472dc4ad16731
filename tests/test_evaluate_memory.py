"""retain_freed_heap: glibc's heap thresholds fixed for CPU evaluation, unless the user set theirs."""

from __future__ import annotations

import platform

import pytest

from vniahd.evaluation.execution import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc only")
def test_applies_once_and_respects_the_users_settings(monkeypatch):
    monkeypatch.setattr(memory, "_retained", False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert memory.retain_freed_heap() is False  # the user's own malloc settings stay
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    for name in memory._USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert memory.retain_freed_heap() is True
    assert memory.retain_freed_heap() is True  # idempotent
