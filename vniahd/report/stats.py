"""Binomial confidence intervals for accuracies.

Every mean accuracy we report comes with a Wilson score interval (Wilson, E. B. 1927, "Probable
inference, the law of succession, and statistical inference", JASA 22:209-212). Unlike the normal
("Wald") interval it stays inside [0, 1] and is not degenerate at 0/n or n/n, which is exactly where
needle-in-a-haystack cells live.

For k successes in n trials, p = k/n and z the standard-normal quantile (1.96 for 95%):

    centre = (p + z²/2n) / (1 + z²/n)
    half   = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/4n²)
    CI     = [centre - half, centre + half]
"""

from __future__ import annotations

import math

import numpy as np

#: Two-sided 95% standard-normal quantile, Φ⁻¹(0.975).
Z95 = 1.959963984540054


def wilson_interval(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` trials; ``(nan, nan)`` when n == 0.

    ``k`` may be fractional (a sum of per-cell scores from a reference file); the formula only
    needs the proportion and the number of trials.
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At k = 0 the lower end is exactly 0 and at k = n the upper end exactly 1 (the square root
    # equals the centre's offset); set them so rounding noise cannot print 0.9999999999999999.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def wilson_arrays(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise :func:`wilson_interval` for arrays (NaN where n == 0)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    lo = np.full(np.broadcast(k, n).shape, np.nan)
    hi = lo.copy()
    for idx in np.ndindex(lo.shape):
        lo[idx], hi[idx] = wilson_interval(
            float(np.broadcast_to(k, lo.shape)[idx]), float(np.broadcast_to(n, lo.shape)[idx]), z
        )
    return lo, hi
