"""Host-side aggregation over trials (NumPy only).

Aggregation follows the paper (method.md 3): average the per-trial curves on
the common grid and compute Area, Area(50%) and QNC on the mean curve. The
per-trial metrics are summarised with a mean and a normal-approximation
interval (``mean_ci``), and methods are compared per trial with an exact
two-sided sign test (``sign_test``).

QNC of the mean curve **[project choice, corrected]**: the paper reads QNC
off the mean curve; averaging range-normalised curves and converting ``x``
back to raw cost trial by trial is incoherent (it yields the mean of
``c_max / best_cost`` when the mean curve reaches the target near ``x = 1``:
6904% where every trial was 100%). Instead, each trial's exact envelope is
put on the axis *cost relative to that trial's best test LLM*, the curves
are averaged there, and QNC is read off that mean curve directly
(:func:`qnc_of_mean_curve`); it always lies within the range of the finite
per-trial values.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from unirouter_jax.core import curves


def mean_curve(quality_sg) -> np.ndarray:
  """``[g]`` mean over trials of ``[s, g]`` curves."""
  return np.mean(np.asarray(quality_sg, np.float64), axis=0)


def mean_curve_band(quality_sg, level=0.95):
  """``(lo_g, hi_g)``: normal-approximation ``level`` band of the mean curve
  (the interval of ``mean_ci`` at every grid point; zero width for one
  trial)."""
  q = np.asarray(quality_sg, np.float64)
  mean_g = q.mean(0)
  if q.shape[0] < 2:
    return mean_g, mean_g
  z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
  half_g = z * q.std(0, ddof=1) / math.sqrt(q.shape[0])
  return mean_g - half_g, mean_g + half_g


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


def qnc_of_mean_curve(
    knot_x_sp,
    knot_y_sp,
    best_quality_s,
    best_cost_s,
    c_min_s,
    c_max_s,
    atol=1e-6,
) -> float:
  """QNC of the mean curve on the relative-cost axis (module docstring).

  Each trial's exact envelope (its vertices, normalised cost) is put on the
  axis ``u = raw cost / best LLM's cost`` of that trial; ``f_s(u)`` is the
  envelope for ``u`` at or right of its first vertex and, left of it, that
  vertex's quality capped at the trial's own target (a trial cannot beat its
  target below the cheapest cost it reaches; with 0 there instead, one trial
  whose best LLM is also its cheapest would hold the mean curve below the
  target until ``u = 1``). ``F(u) = mean_s f_s(u)`` is non-decreasing;
  the result is the smallest ``u`` with ``F(u) >= mean_s best_quality_s -
  atol`` (bisection to relative 1e-12), ``inf`` if never reached. It lies
  within [min, max] of the per-trial QNCs whenever all are finite: every
  ``f_s`` reaches its own target exactly at its own QNC. Trials whose best
  LLM costs nothing have no relative axis and are left out.

  Args:
    knot_x_sp, knot_y_sp: ``[s, p]`` envelope vertices per trial.
    best_quality_s, best_cost_s: ``[s]`` best single LLM per trial.
    c_min_s, c_max_s: ``[s]`` raw cost range per trial.
    atol: reached means ``>= target - atol`` (as the per-trial QNC).
  """
  kx = np.asarray(knot_x_sp, np.float64)
  ky = np.asarray(knot_y_sp, np.float64)
  best_cost_s = np.asarray(best_cost_s, np.float64)
  ok = best_cost_s > 0
  if not ok.any():
    return math.inf
  kx, ky, bq = kx[ok], ky[ok], np.asarray(best_quality_s, np.float64)[ok]
  lo_s = np.asarray(c_min_s, np.float64)[ok][:, None]
  hi_s = np.asarray(c_max_s, np.float64)[ok][:, None]
  # The one definition of the cost axis, applied on the host.
  u_sp = curves.raw_cost(kx, lo_s, hi_s) / best_cost_s[ok][:, None]
  target = float(np.mean(bq)) - atol

  # Left of a trial's first vertex: that vertex's quality, capped at the
  # trial's own target (it cannot beat its target below the cheapest cost
  # it reaches), so no trial pulls the mean past the others' crossings.
  cap_s = np.minimum(ky[:, 0], bq - atol)
  rows = np.arange(u_sp.shape[0])

  def mean_at(u):
    # Every trial's piecewise-linear envelope at u at once (vertices are
    # increasing; padding repeats the last one, where the curve is flat).
    j_s = np.clip((u_sp <= u).sum(1) - 1, 0, u_sp.shape[1] - 1)
    k_s = np.minimum(j_s + 1, u_sp.shape[1] - 1)
    x0, x1 = u_sp[rows, j_s], u_sp[rows, k_s]
    y0, y1 = ky[rows, j_s], ky[rows, k_s]
    step = np.where(x1 > x0, x1 - x0, 1.0)
    f_s = np.where(x1 > x0, y0 + (u - x0) / step * (y1 - y0), y0)
    f_s = np.where(u >= u_sp[:, 0], f_s, cap_s)
    return float(np.mean(f_s))

  a, b = float(u_sp[:, 0].min()), float(u_sp.max())
  if mean_at(b) < target:
    return math.inf
  if mean_at(a) >= target:
    return a
  for _ in range(200):
    mid = 0.5 * (a + b)
    if mean_at(mid) >= target:
      b = mid
    else:
      a = mid
    if b - a <= 1e-12 * max(abs(b), 1e-12):
      break
  return b


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
