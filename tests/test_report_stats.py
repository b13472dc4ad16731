"""Wilson 95% intervals against values computed by hand.

z = Φ⁻¹(0.975) = 1.959963984540054, z² = 3.841458820694124.
- k=0, n=10: centre = (z²/20)/(1+z²/10), half = same, so [0, (z²/10)/(1+z²/10)]
  = [0, 0.3841458820694124/1.3841458820694124] = [0, 0.27753279986...].
- k=10, n=10: by symmetry [1 - 0.27753279986..., 1] = [0.72246720013..., 1].
- k=45, n=50 (p=0.9): the textbook value [0.7864, 0.9565] (Newcombe 1998, method 3).
"""

import math

import numpy as np
import pytest

from vniahd.reporting.stats import Z95, wilson_arrays, wilson_interval


def test_z95_is_the_975_quantile():
    assert Z95 == pytest.approx(1.959963984540054, abs=1e-15)
    assert 0.5 * math.erfc(-Z95 / math.sqrt(2)) == pytest.approx(0.975, abs=1e-12)


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [
        (45, 50, 0.7863976856252035, 0.9565242350681096),
        (0, 10, 0.0, 0.2775327998628892),
        (10, 10, 0.7224672001371107, 1.0),
        (30, 60, 0.3773502424155577, 0.6226497575844423),
        (1, 2, 0.09453120573423074, 0.9054687942657693),
    ],
)
def test_wilson_hand_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-12)
    assert got[1] == pytest.approx(hi, abs=1e-12)


def test_wilson_edges_are_exact_and_symmetric():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    lo, hi = wilson_interval(3, 17)
    lo2, hi2 = wilson_interval(14, 17)
    assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)


def test_wilson_empty_and_invalid():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_wilson_arrays_match_scalar():
    lo, hi = wilson_arrays(np.array([45, 0, 10]), np.array([50, 10, 10]))
    assert lo == pytest.approx([0.7863976856252035, 0.0, 0.7224672001371107])
    assert hi == pytest.approx([0.9565242350681096, 0.2775327998628892, 1.0])
