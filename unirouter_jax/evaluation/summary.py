"""Host-side aggregation of protocol results into tables (method.md 3).

The paper averages per-trial curves on the common cost grid and computes the
metrics on the mean curve (QNC on the relative-cost axis, see
``stats.qnc_of_mean_curve``); we report that, plus the per-trial mean with a
95% interval and sign tests (alpha = 0.01) of every method against UniRoute
(K-means) on per-trial Area, Area(50%) and QNC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import numpy as np

from unirouter_jax.core.structs import CurveMetrics, TrialResult
from unirouter_jax.evaluation import stats

REFERENCE = 'uniroute_kmeans'
ALPHA = 0.01


def _finite_or_str(x: float):
  """JSON-safe number: ``inf`` becomes the string ``"inf"``."""
  x = float(x)
  if math.isinf(x):
    return 'inf' if x > 0 else '-inf'
  if math.isnan(x):
    return 'nan'
  return x


def summarise_curves(
    curves: Mapping[str, CurveMetrics],
    grid_g: np.ndarray,
    trial: Mapping[str, np.ndarray],
    reference: str = REFERENCE,
) -> dict[str, dict]:
  """Per-method summary of per-trial curves.

  Args:
    curves: name -> :class:`CurveMetrics` with a leading ``[s]`` axis.
    grid_g: ``[g]`` the common normalised-cost grid.
    trial: ``[s]`` arrays ``best_quality``, ``best_cost``, ``c_min``,
      ``c_max`` of every trial (to read QNC off the mean curve).
    reference: the method every other one is sign-tested against.

  Returns:
    name -> dict with the mean-curve metrics (``area``, ``area50``, ``qnc``,
    ``peak``), per-trial means and 95% intervals (``area_ci`` ...), the sign
    test against ``reference`` and the mean curve itself.
  """
  curves = jax.tree.map(np.asarray, dict(curves))
  out = {}
  for name, c in curves.items():
    mean_q = stats.mean_curve(c.quality_g)
    row = {
        'area': stats.curve_area(grid_g, mean_q),
        'area50': stats.area50(grid_g, mean_q),
        'qnc': stats.qnc_of_mean_curve(
            c.knot_x_p,
            c.knot_y_p,
            trial['best_quality'],
            trial['best_cost'],
            trial['c_min'],
            trial['c_max'],
        ),
        'peak': float(np.max(mean_q)),
        'curve': mean_q.tolist(),
    }
    for metric in ('area', 'area50', 'qnc', 'peak'):
      ci = stats.mean_ci(getattr(c, metric))
      row[f'{metric}_trial_mean'] = ci.center
      row[f'{metric}_ci'] = [ci.lo, ci.hi]
      if ci.used_median:
        row[f'{metric}_ci_note'] = 'median, order-statistic interval (inf seen)'
    lo_g, hi_g = stats.mean_curve_band(c.quality_g)
    row['curve_ci'] = [lo_g.tolist(), hi_g.tolist()]
    if reference in curves and name != reference:
      ref = curves[reference]
      tests = {}
      # Higher is better for Area and Area(50%), lower for QNC.
      for metric, a, b in (
          ('area', c.area, ref.area),
          ('area50', c.area50, ref.area50),
          ('qnc', ref.qnc, c.qnc),
      ):
        wins, losses, ties, p = stats.sign_test(a, b)
        tests[metric] = {
            'wins': wins,
            'losses': losses,
            'ties': ties,
            'p_value': p,
            'significant': stats.significant(p, ALPHA),
        }
      row['sign_test_vs_' + reference] = tests['area']
      row['sign_tests_vs_' + reference] = tests
    out[name] = {k: _json(v) for k, v in row.items()}
  return out


def _json(v):
  if isinstance(v, (float, np.floating)):
    return _finite_or_str(v)
  if isinstance(v, list):
    return [_json(x) for x in v]
  if isinstance(v, dict):
    return {k: _json(x) for k, x in v.items()}
  return v


def summarise(result: TrialResult, grid_g: np.ndarray) -> dict[str, dict]:
  """Summary of every method and the Oracle of a protocol run."""
  curves = {name: r.metrics for name, r in result.methods.items()}
  curves['oracle'] = result.oracle
  trial = {
      k: np.asarray(getattr(result, k))
      for k in ('best_quality', 'best_cost', 'c_min', 'c_max')
  }
  return summarise_curves(curves, grid_g, trial)
