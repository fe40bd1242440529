"""Host-side aggregation over trials (NumPy only).

Aggregation follows the paper (method.md 3): average the per-trial curves on
the common grid and compute Area, Area(50%) and QNC on the mean curve. The
per-trial metrics are summarised with a mean and a normal-approximation
interval (``mean_ci``), and methods are compared per trial with an exact
two-sided sign test (``sign_test``).

QNC on the mean curve **[project choice]**: the smallest ``x`` where the mean
curve (linear between grid points) reaches the mean over trials of the best
LLM's quality, converted to a ratio with the mean over trials of
``(c_min + x (c_max - c_min)) / best_cost``; ``inf`` if never reached.
"""

from __future__ import annotations

import math
import statistics

import numpy as np


def mean_curve(quality_sg) -> np.ndarray:
  """``[g]`` mean over trials of ``[s, g]`` curves."""
  return np.mean(np.asarray(quality_sg, np.float64), axis=0)


def _integral(grid_g, quality_g, a, b) -> float:
  """Exact integral over ``[a, b]`` of the linear interpolant (flat ends)."""
  x_g = np.asarray(grid_g, np.float64)
  y_g = np.asarray(quality_g, np.float64)
  if x_g.ndim != 1 or x_g.shape != y_g.shape or x_g.size == 0:
    raise ValueError(
        f'grid_g, quality_g: expected equal 1-D shapes, got {x_g.shape} and '
        f'{y_g.shape}.'
    )
  if np.any(np.diff(x_g) < 0):
    raise ValueError('grid_g: expected a non-decreasing grid.')
  t_r = np.concatenate([[a], np.clip(x_g, a, b), [b]])
  f_r = np.interp(t_r, x_g, y_g)
  return float(np.sum(0.5 * (f_r[1:] + f_r[:-1]) * np.diff(t_r)))


def curve_area(grid_g, quality_g) -> float:
  """Integral of the curve over normalised cost [0, 1]."""
  return _integral(grid_g, quality_g, 0.0, 1.0)


def area50(grid_g, quality_g) -> float:
  """Integral over [0, 0.5], not rescaled."""
  return _integral(grid_g, quality_g, 0.0, 0.5)


def qnc_from_mean_curve(
    grid_g, quality_g, best_quality_s, best_cost_s, c_min_s, c_max_s, atol=1e-6
) -> float:
  """QNC of the mean curve (see the module docstring); ``inf`` if not reached.

  Args:
    grid_g: ``[g]`` increasing normalised-cost grid.
    quality_g: ``[g]`` mean curve.
    best_quality_s, best_cost_s: ``[s]`` best single LLM per trial.
    c_min_s, c_max_s: ``[s]`` raw cost range per trial.
    atol: reached means ``>= mean best quality - atol``.
  """
  x_g = np.asarray(grid_g, np.float64)
  y_g = np.asarray(quality_g, np.float64)
  target = float(np.mean(best_quality_s)) - atol
  hit = np.nonzero(y_g >= target)[0]
  if hit.size == 0:
    return math.inf
  i = int(hit[0])
  if i == 0:
    x = x_g[0]
  else:
    y0, y1 = y_g[i - 1], y_g[i]
    x = x_g[i - 1] + (target - y0) / (y1 - y0) * (x_g[i] - x_g[i - 1])
  c_min_s = np.asarray(c_min_s, np.float64)
  c_max_s = np.asarray(c_max_s, np.float64)
  best_cost_s = np.asarray(best_cost_s, np.float64)
  if np.any(best_cost_s <= 0):
    raise ValueError('best_cost_s: expected positive costs.')
  return float(np.mean((c_min_s + x * (c_max_s - c_min_s)) / best_cost_s))


class MeanCI(tuple):
  """``(center, lo, hi)``, plus ``used_median``: True when some value was
  infinite, so ``center`` is the median and ``(lo, hi)`` its distribution-free
  order-statistic interval."""

  def __new__(cls, center, lo, hi, used_median=False):
    self = super().__new__(cls, (center, lo, hi))
    self.used_median = bool(used_median)
    return self

  center = property(lambda self: self[0])
  lo = property(lambda self: self[1])
  hi = property(lambda self: self[2])


def mean_ci(values_s, level=0.95) -> MeanCI:
  """Mean and normal-approximation ``level`` interval of per-trial values.

  Inf-aware: if any value is infinite (e.g. QNC never reached), returns the
  median with a binomial order-statistic interval and sets ``used_median``.
  With one value the interval is that value.

  Raises:
    ValueError: on an empty input, NaN values or ``level`` outside (0, 1).
  """
  v = np.asarray(values_s, np.float64).ravel()
  if v.size == 0:
    raise ValueError('values_s: expected at least one value, got none.')
  if np.isnan(v).any():
    raise ValueError('values_s: expected no NaN values.')
  if not 0 < level < 1:
    raise ValueError(f'level: expected a value in (0, 1), got {level!r}.')
  n = v.size
  if np.isinf(v).any():
    s = np.sort(v)
    alpha = 1.0 - level
    # Largest j with P[Binom(n, 1/2) <= j - 1] <= alpha / 2 (1-based).
    j = 0
    while j < n and _binom_cdf(j, n) <= alpha / 2:
      j += 1
    lo = s[j - 1] if j >= 1 else -math.inf
    hi = s[n - j] if j >= 1 else math.inf
    return MeanCI(float(np.median(v)), float(lo), float(hi), True)
  mean = float(np.mean(v))
  if n == 1:
    return MeanCI(mean, mean, mean)
  z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
  half = z * float(np.std(v, ddof=1)) / math.sqrt(n)
  return MeanCI(mean, mean - half, mean + half)


def _binom_cdf(k: int, n: int) -> float:
  """``P[Binom(n, 1/2) <= k]`` summed in log space."""
  if k < 0:
    return 0.0
  if k >= n:
    return 1.0
  log_half_n = n * math.log(0.5)
  terms = [
      math.lgamma(n + 1)
      - math.lgamma(i + 1)
      - math.lgamma(n - i + 1)
      + log_half_n
      for i in range(k + 1)
  ]
  top = max(terms)
  return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def sign_test(a_s, b_s):
  """Exact two-sided sign test of paired per-trial values.

  ``wins`` counts trials with ``a > b``, ``losses`` those with ``a < b``
  (flip the arguments for lower-is-better metrics such as QNC); ties
  (including equal infinities) are dropped.

  Returns:
    ``(wins, losses, ties, p_value)`` with ``p = min(1, 2 P[X <= min(w,
    l)])``, ``X ~ Binom(w + l, 1/2)``; ``p = 1`` when there is no non-tie.

  Raises:
    ValueError: on shape mismatch or NaN values.
  """
  a = np.asarray(a_s, np.float64).ravel()
  b = np.asarray(b_s, np.float64).ravel()
  if a.shape != b.shape:
    raise ValueError(f'b_s: expected shape {a.shape} (as a_s), got {b.shape}.')
  if np.isnan(a).any() or np.isnan(b).any():
    raise ValueError('a_s, b_s: expected no NaN values.')
  wins = int(np.sum(a > b))
  losses = int(np.sum(a < b))
  ties = int(a.size - wins - losses)
  n = wins + losses
  if n == 0:
    return wins, losses, ties, 1.0
  p = min(1.0, 2.0 * _binom_cdf(min(wins, losses), n))
  return wins, losses, ties, p


def significant(p, alpha=0.01) -> bool:
  """True when ``p < alpha`` (the paper's level is 0.01)."""
  return bool(p < alpha)
