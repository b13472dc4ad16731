"""``vniahd train-tiny --variant mrope --seed 0 --verify`` on this machine (slow: one training run).

On a machine with the shipped checkpoint's facts (torch, transformers, CPU ISA; the thread count is
set to the shipped one) it must retrain the shipped float16 weights bit for bit; elsewhere it must
report the difference and pass on the training-length accuracy. Either way it exits 0 and prints
both models' accuracy at the training length.
"""

from __future__ import annotations

import pytest

from vniahd.cli import main


@pytest.mark.slow
def test_verify_mrope_seed0_passes(capsys, demo_haystack):
    from vniahd.models.tiny.shipped import facts_differences, find_shipped_for, machine_facts

    code = main(["train-tiny", "--variant", "mrope", "--seed", "0", "--verify", "--no-progress"])
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    assert "PASS" in out and "accuracy at the training length: shipped" in out
    shipped = find_shipped_for("mrope", 0)
    assert shipped is not None
    here = {**machine_facts(), "threads": shipped.entry["machine"]["threads"]}
    if not facts_differences(shipped.entry["machine"], here):
        assert "bit-for-bit equal" in out
