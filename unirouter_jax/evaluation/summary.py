"""Host-side aggregation of protocol results into tables (method.md 3).

The paper averages per-trial curves on the common cost grid and computes the
metrics on the mean curve (QNC on the relative-cost axis, see
``stats.qnc_of_mean_curve``); we report that, plus the per-trial mean with a
95% interval and sign tests (alpha = 0.01) of every method against UniRoute
(K-means) on per-trial Area, Area(50%) and QNC.

The result is a :class:`Summary`: the plain ``name -> row`` dict (what
``summary.json`` stores) with two table views, :meth:`Summary.to_markdown`
and :meth:`Summary.to_frame` (one row per method).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from unirouter_jax.core.structs import CurveMetrics, TrialResult
from unirouter_jax.evaluation import stats

REFERENCE = 'uniroute_kmeans'
ALPHA = 0.01
# Methods every other one is compared with (trials won/lost on Area) in the
# table views, where present.
BASELINES = (REFERENCE, 'zero_router')


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
    *,
    selection: Mapping[str, Mapping[str, Any]] | None = None,
) -> Summary:
  """Per-method summary of per-trial curves.

  Args:
    curves: name -> :class:`CurveMetrics` with a leading ``[s]`` axis.
    grid_g: ``[g]`` the common normalised-cost grid.
    trial: ``[s]`` arrays ``best_quality``, ``best_cost``, ``c_min``,
      ``c_max`` of every trial (to read QNC off the mean curve).
    reference: the method every other one is sign-tested against.
    selection: name -> the most often selected hyperparameters (see
      :func:`selected_point`), shown by the table views only.

  Returns:
    A :class:`Summary`: name -> dict with the mean-curve metrics (``area``,
    ``area50``, ``qnc``, ``peak``), per-trial means and 95% intervals
    (``area_ci`` ...), the sign test against ``reference`` and the mean
    curve itself.
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
  # Trials won/lost on Area against each baseline, for the table views
  # (against ``reference`` the same counts as the sign test above).
  # Counted directly (NaN compares as neither win nor loss).
  bases = [b for b in dict.fromkeys((reference, *BASELINES)) if b in curves]
  wins_losses = {
      name: {
          b: (
              int(np.sum(c.area > curves[b].area)),
              int(np.sum(c.area < curves[b].area)),
          )
          for b in bases
          if b != name
      }
      for name, c in curves.items()
  }
  return Summary(out, wins_losses=wins_losses, selection=dict(selection or {}))


def _json(v):
  if isinstance(v, (float, np.floating)):
    return _finite_or_str(v)
  if isinstance(v, list):
    return [_json(x) for x in v]
  if isinstance(v, dict):
    return {k: _json(x) for k, x in v.items()}
  return v


def _cell(x: float, pct: bool = False) -> str:
  if math.isinf(x):
    return '∞' if x > 0 else '-∞'
  return f'{100 * x:.1f}%' if pct else f'{x:.4f}'


def _point_text(sel: Mapping[str, Any] | None) -> str:
  if not sel or not sel['point']:
    return '-'
  point = ', '.join(f'{k}={v}' for k, v in sel['point'].items())
  return f'{point} ({100 * sel["share"]:.0f}% of trials)'


class Summary(dict):
  """``name -> row`` dict of :func:`summarise_curves` with table views.

  It is a plain ``dict`` to every caller (``summary[name]['area']``,
  ``json.dump``); :meth:`table`, :meth:`to_frame` and :meth:`to_markdown`
  give one row per method with the Area, its 95% interval, QNC, Peak,
  trials won/lost on Area against each baseline present (the reference
  and :data:`BASELINES`) and the hyperparameters selected in most trials.

  Attributes:
    wins_losses: name -> baseline -> ``(wins, losses)`` on per-trial Area.
    selection: name -> :func:`selected_point` (methods with a grid only).
  """

  def __init__(
      self,
      rows: Mapping[str, dict] = (),
      *,
      wins_losses: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
      selection: Mapping[str, Mapping[str, Any]] | None = None,
  ):
    super().__init__(rows)
    self.wins_losses = dict(wins_losses or {})
    self.selection = dict(selection or {})

  def baselines(self) -> list[str]:
    """The baselines present (the sign-test reference first)."""
    seen = {b for wl in self.wins_losses.values() for b in wl}
    order = [REFERENCE, *BASELINES, *sorted(seen)]
    return [b for b in dict.fromkeys(order) if b in seen]

  def table(self) -> list[dict[str, Any]]:
    """One record per method (in the dict's order), numbers as floats.

    Keys: ``method``, ``area``, ``area_ci_lo``, ``area_ci_hi``, ``qnc``
    (relative cost; ``inf`` when the best LLM is never reached), ``peak``,
    ``wins_vs_<b>`` / ``losses_vs_<b>`` for each baseline ``b`` (None for
    the baseline itself), ``selected`` (text) and ``selected_share``.
    """
    records = []
    for name, row in self.items():
      lo, hi = row['area_ci']
      rec = {
          'method': name,
          'area': float(row['area']),
          'area_ci_lo': float(lo),
          'area_ci_hi': float(hi),
          'qnc': float(row['qnc']),
          'peak': float(row['peak']),
      }
      for b in self.baselines():
        wl = self.wins_losses.get(name, {}).get(b)
        rec[f'wins_vs_{b}'] = None if wl is None else int(wl[0])
        rec[f'losses_vs_{b}'] = None if wl is None else int(wl[1])
      sel = self.selection.get(name)
      rec['selected'] = _point_text(sel)
      rec['selected_share'] = (
          sel['share'] if sel and sel['point'] else float('nan')
      )
      records.append(rec)
    return records

  def to_frame(self):
    """The :meth:`table` as a ``pandas.DataFrame`` indexed by method."""
    # pandas only at the edge: imported when a frame is asked for.
    import pandas as pd  # pylint: disable=g-import-not-at-top

    frame = pd.DataFrame.from_records(self.table(), index='method')
    # Counts stay integers; a baseline against itself is <NA>.
    counts = [c for c in frame.columns if c.startswith(('wins_', 'losses_'))]
    return frame.astype({c: 'Int64' for c in counts})

  def to_markdown(self, labels: Mapping[str, str] | None = None) -> str:
    """The :meth:`table` as a Markdown table (no pandas needed).

    Args:
      labels: optional display names of the methods (e.g.
        ``unirouter_jax.shell.report.LABELS``).
    """
    labels = labels or {}
    bases = self.baselines()
    head = ['Method', 'Area', 'Area 95% CI', 'QNC', 'Peak']
    head += [f'W/L vs {labels.get(b, b)}' for b in bases]
    head.append('Selected')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for rec in self.table():
      cells = [
          labels.get(rec['method'], rec['method']),
          _cell(rec['area']),
          f'[{_cell(rec["area_ci_lo"])}, {_cell(rec["area_ci_hi"])}]',
          _cell(rec['qnc'], pct=True),
          _cell(rec['peak']),
      ]
      for b in bases:
        w = rec[f'wins_vs_{b}']
        cells.append('-' if w is None else f'{w}/{rec[f"losses_vs_{b}"]}')
      cells.append(rec['selected'])
      lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def selected_point(
    selected_s: np.ndarray, grid: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
  """The hyperparameter point selected in most trials.

  Args:
    selected_s: ``[s]`` index of the selected grid point in each trial.
    grid: hyperparameter name -> ``[G]`` values (the protocol's grid of the
      method); without it the point is named by its index.

  Returns:
    ``{'index': i, 'share': fraction of trials, 'point': {name: value}}``.
  """
  sel = np.asarray(selected_s, np.int64).ravel()
  if sel.size == 0:
    raise ValueError('selected_s: expected at least one trial, got none.')
  counts = np.bincount(sel)
  i = int(np.argmax(counts))
  if grid is None:
    point = {'index': i}
  else:
    point = {}
    for k, v in grid.items():
      v = np.asarray(v).ravel()
      if i >= v.size:
        raise ValueError(
            f'grid[{k!r}]: expected more than {i} values (the selected'
            f' index), got {v.size}.'
        )
      point[k] = v[i].item()
  return {'index': i, 'share': float(counts[i] / sel.size), 'point': point}


def summarise(
    result: TrialResult,
    grid_g: np.ndarray,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> Summary:
  """Summary of every method and the Oracle of a protocol run.

  Args:
    result: the protocol's :class:`TrialResult` (leading ``[s]`` axis).
    grid_g: ``[g]`` the common normalised-cost grid.
    grids: optional name -> hyperparameter grid (as ``protocol.prepare``
      returns), to name the selected hyperparameters in the table views.

  Returns:
    A :class:`Summary` (a dict ``name -> row``; see
    :func:`summarise_curves`).
  """
  curves = {name: r.metrics for name, r in result.methods.items()}
  curves['oracle'] = result.oracle
  trial = {
      k: np.asarray(getattr(result, k))
      for k in ('best_quality', 'best_cost', 'c_min', 'c_max')
  }
  grids = grids or {}
  selection = {}
  for name, r in result.methods.items():
    grid = grids.get(name)
    if grid is None and np.shape(r.test_area_g)[-1] <= 1:
      grid = {}  # a single grid point: nothing was selected
    selection[name] = selected_point(r.selected, grid)
  return summarise_curves(curves, grid_g, trial, selection=selection)
