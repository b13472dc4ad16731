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


# --- Student's t: intervals over a few replicates (seeds, checkpoints) ----------------------------
#
# The across-seed table treats each seed's mean accuracy as one observation, so its interval is
# mean ± t_{0.975, n-1} · s / √n over the n per-seed means (s: their sample standard deviation).
# The t quantile needs no scipy: Student's CDF has a closed form for whole degrees of freedom
# (Abramowitz & Stegun 26.7.3–26.7.4; θ = atan(t/√ν), A(t|ν) = P(|T| ≤ t)):
#
#   ν odd:  A = (2/π)·(θ + sinθ·cosθ·(1 + (2/3)cos²θ + (2·4)/(3·5)cos⁴θ + … up to cos^{ν-3}θ))
#   ν even: A = sinθ·(1 + (1/2)cos²θ + (1·3)/(2·4)cos⁴θ + … up to cos^{ν-2}θ)
#
# and the quantile is found by bisection to machine precision.


def t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| ≤ t) for Student's t with ``df`` (a whole number ≥ 1) degrees of freedom."""
    if df < 1 or int(df) != df:
        raise ValueError(f"t distribution needs whole degrees of freedom >= 1, got {df}")
    if t <= 0:
        return 0.0
    if math.isinf(t):
        return 1.0
    df = int(df)
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if df % 2 == 1:
        total, term = 0.0, 1.0
        if df > 1:
            total = 1.0
            for k in range(1, (df - 1) // 2):  # terms up to cos^{df-3}
                term *= c2 * (2 * k) / (2 * k + 1)
                total += term
        return min(1.0, 2.0 / math.pi * (theta + s * c * total))
    total, term = 1.0, 1.0
    for k in range(1, df // 2):  # terms up to cos^{df-2}
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return min(1.0, s * total)


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (0.5 ≤ p < 1) of Student's t with ``df`` degrees of freedom, e.g.
    ``t_quantile(0.975, 2) = 4.3027``, ``t_quantile(0.975, 4) = 2.7764``."""
    if not 0.5 <= p < 1:
        raise ValueError(f"t_quantile needs 0.5 <= p < 1, got {p}")
    mass = 2 * p - 1  # P(|T| <= t)
    lo, hi = 0.0, 1.0
    while t_two_sided_mass(hi, df) < mass:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if t_two_sided_mass(mid, df) < mass:
            lo = mid
        else:
            hi = mid
    return hi


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` with its Student-t ``level`` interval,
    mean ± t_{(1+level)/2, n-1} · s/√n. With one value the ends are NaN (no spread to measure);
    with none, all three are NaN."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = math.fsum(xs) / n
    if n == 1:
        return (mean, math.nan, math.nan)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return (mean, mean - half, mean + half)
