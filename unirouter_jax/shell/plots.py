"""PNG plots of protocol runs (the only module that imports matplotlib).

Every function reads plain host data (the ``summary.json`` dict written by
:mod:`unirouter_jax.shell.workdir`, or NumPy arrays), writes one PNG
atomically and returns the figure. LLM names are never cut: legends sit in
a column right of the axes with a font that shrinks with the number of
entries, heat-maps grow with the number of LLMs. Figures are built with the object API (``matplotlib.figure``),
so no display is needed and a notebook's pyplot backend is left alone.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.colors
import matplotlib.lines
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from unirouter_jax.shell import chunks
from unirouter_jax.shell.report import LABELS as _LABELS
from unirouter_jax.shell.report import ORDER_NOTE as _ORDER_NOTE

_STYLE = {
    'zero_router': dict(color='tab:gray', ls='--'),
    'knn': dict(color='tab:orange'),
    'uniroute_kmeans': dict(color='tab:blue', lw=2.2),
    'uniroute_soft_kmeans': dict(color='tab:cyan'),
    'uniroute_learned_map': dict(color='tab:green', lw=1.8),
    'uniroute_learned_map_train_psi': dict(color='tab:olive', lw=1.4),
    'mlp_retrained': dict(color='tab:pink', ls='-.'),
    'matfac_retrained': dict(color='tab:red', ls='-.', lw=1.2),
    'mlp_oracle': dict(color='tab:purple', ls=':'),
    'matfac_oracle': dict(color='tab:brown', ls=':'),
    'oracle': dict(color='black', ls='-.', lw=1.0),
}


# Above this many LLMs the two psi heat-maps are stacked (each gets the
# full width) and cells carry no numbers; up to _CELL_VALUES they do.
HEATMAP_STACK_AT = 60
_CELL_VALUES = 16
# Single LLMs in the deferral plot: all named (coloured, full names) up to
# _NAME_ALL, else the best _NAMED by mean quality and the rest in grey.
_NAME_ALL = 12
_NAMED = 8
_MARKERS = ('o', 's', '^', 'D')


def _save(fig, path: str | os.PathLike, *, palette: bool = False) -> None:
  """Writes ``fig`` as a PNG atomically (temp file, then rename).

  ``palette``: store 256 colours instead of RGBA, which makes a large
  heat-map (mostly anti-aliased tick text) three times smaller; the
  max-coverage palette without dithering keeps every pixel within 4/255
  of the RGB rendering (measured on a 110-LLM map).
  """

  def write(f):
    if not palette:
      fig.savefig(f, format='png', dpi=120, bbox_inches='tight')
      return
    # Pillow comes with matplotlib.
    from PIL import Image  # pylint: disable=g-import-not-at-top

    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=120, bbox_inches='tight')
    buf.seek(0)
    with Image.open(buf) as im:
      quantized = im.convert('RGB').quantize(
          256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
      )
      quantized.save(f, format='png', optimize=True)

  chunks.atomic_write(path, write, mode='wb')


def _legend_fontsize(entries: int) -> float:
  """Legend font (points) shrinking from 8 with the number of entries."""
  return float(np.clip(8.6 - 0.12 * entries, 5.5, 8.0))


def _outside_legend(ax, handles, *, title: str, upper: bool = True, n=None):
  """A legend in a column right of the axes (full names, nothing hidden)."""
  n = len(handles) if n is None else n
  fs = _legend_fontsize(n)
  return ax.legend(
      handles=handles,
      loc='upper left' if upper else 'lower left',
      bbox_to_anchor=(1.02, 1.0 if upper else 0.0),
      borderaxespad=0.0,
      fontsize=fs,
      title=title,
      title_fontsize=fs + 0.5,
      alignment='left',
      frameon=False,
  )


def deferral_curves(
    path, summary: Mapping[str, Any], *, with_oracle: bool = True
) -> Figure:
  """Mean deferral curves with 95% bands; single LLMs trial by trial.

  Curves and points share one axis and one set of trials: each curve is the
  mean over all trials of that trial's curve (normalised cost of that
  trial's test pool), with the normal 95% band of the mean; each single LLM
  is drawn at its position in every trial where it is a test LLM (small
  translucent points), never as an average over a different set of trials.
  Up to 12 LLMs all are coloured and named (full names), beyond that the
  best eight by mean quality, the others grey. Legends sit right of the
  axes.

  Args:
    path: output PNG.
    summary: a ``summary.json`` dict (``grid``, ``mean_curves``, and when
      present ``curve_bands`` and ``single_llm_trials``).
    with_oracle: also draw the per-prompt Oracle (the headroom).

  Returns:
    The figure (already written to ``path``).
  """
  grid = np.asarray(summary['grid'])
  bands = summary.get('curve_bands', {})
  trials = summary.get('single_llm_trials', {})
  best = sorted(trials, key=lambda n: -float(np.mean(trials[n]['quality'])))
  named = best if len(best) <= _NAME_ALL else best[:_NAMED]
  entries = len(summary['mean_curves']) + len(named) + 1
  fig = Figure(figsize=(8.0, max(5.4, 1.2 + 0.16 * entries)))
  ax = fig.subplots()
  curves = []
  for name, curve in summary['mean_curves'].items():
    if name == 'oracle' and not with_oracle:
      continue
    style = _STYLE.get(name, {})
    (line,) = ax.plot(grid, curve, label=_LABELS.get(name, name), **style)
    curves.append(line)
    if name in bands:
      lo, hi = (np.asarray(b, np.float64) for b in bands[name])
      ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
  points = []
  for name, p in trials.items():
    i = named.index(name) if name in named else None
    colour, marker = _point_style(i)
    ax.scatter(
        p['x'],
        p['quality'],
        s=10,
        marker=marker,
        alpha=0.45 if i is not None else 0.15,
        color=colour,
        lw=0,
        zorder=3 if i is None else 4,
    )
  for i, name in enumerate(named):
    points.append(_point_handle(i, name))
  if len(named) < len(trials):
    rest = len(trials) - len(named)
    points.append(_point_handle(None, f'{rest} other single LLMs'))
  ax.set_xlabel(
      'normalised cost of the trial (0: cheapest test LLM, 1: dearest)'
  )
  ax.set_ylabel('test quality')
  ax.set_title(
      f'{summary["dataset"]}: mean deferral curves over '
      f'{summary["trials"]} trials, 95% bands\n(points: each single LLM in '
      'each trial where it is a test LLM)',
      fontsize=9,
  )
  ax.grid(alpha=0.3)
  first = _outside_legend(ax, curves, title='routers', n=entries)
  if points:
    ax.add_artist(first)
    _outside_legend(
        ax,
        points,
        title='single LLMs (a point per trial)',
        upper=False,
        n=entries,
    )
  _save(fig, path)
  return fig


def _point_style(i: int | None) -> tuple[Any, str]:
  """Colour and marker of the ``i``-th named single LLM (None: grey)."""
  if i is None:
    return 'tab:gray', 'o'
  # Dark2 without its last colour, a grey like that of the unnamed LLMs.
  colours = matplotlib.colormaps['Dark2'].colors[:7]
  return colours[i % len(colours)], _MARKERS[(i // len(colours)) % 4]


def _point_handle(i: int | None, label: str):
  colour, marker = _point_style(i)
  return matplotlib.lines.Line2D(
      [], [], ls='', marker=marker, ms=4.5, color=colour, label=label
  )


def area_vs_hp(path, summary: Mapping[str, Any]) -> Figure:
  """Mean test Area against K (clusters) or k (neighbours), with the
  fraction of trials that selected each value as marker size."""
  hps = {
      n: h
      for n, h in summary.get('hyperparameters', {}).items()
      if h['hp'] == 'k'
      and len(h['values']) > 1
      and h['test_area_mean'] is not None
  }
  fig = Figure(figsize=(7.5, 4.2))
  ax = fig.subplots()
  lines = []
  for name, h in hps.items():
    k = np.asarray(h['values'])
    mean = np.asarray(h['test_area_mean'])
    sd = np.asarray(h['test_area_std'])
    se = sd / np.sqrt(max(summary['trials'], 1))
    style = {k_: v for k_, v in _STYLE.get(name, {}).items() if k_ != 'ls'}
    (line,) = ax.plot(
        k, mean, marker='o', ms=3, label=_LABELS.get(name, name), **style
    )
    lines.append(line)
    ax.fill_between(
        k, mean - 2 * se, mean + 2 * se, alpha=0.15, color=style.get('color')
    )
    count = np.asarray(h.get('selected_count', []), np.float64)
    if count.shape == k.shape and count.sum() > 0:
      ax.scatter(
          k,
          mean,
          s=500 * count / count.sum(),
          color=line.get_color(),
          alpha=0.4,
          lw=0,
          zorder=3,
      )
  ax.set_xscale('log')
  ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  ticks = sorted({v for h in hps.values() for v in h['values']})
  if ticks:
    ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
  ax.set_xlabel('K (clusters) / k (neighbours for K-NN)')
  ax.set_ylabel('mean test Area')
  ax.set_title(
      f'{summary["dataset"]}: Area vs K ({summary["trials"]} trials, '
      'bands: ±2 s.e.;\ndisc area: share of trials that selected the value)',
      fontsize=9,
  )
  ax.grid(alpha=0.3)
  if lines:
    _outside_legend(ax, lines, title='routers')
  _save(fig, path)
  return fig


def _diverging_norm(s: np.ndarray, centred: bool):
  """Colour scale of one heat-map: ``[-1, 1]`` around 0 for centred psi;
  for raw psi (cosines of non-negative columns, mostly near 1) around the
  median off-diagonal value, so that the contrast is not spent on 0..0.8.
  """
  if centred:
    return matplotlib.colors.Normalize(vmin=-1.0, vmax=1.0)
  off = s[~np.eye(len(s), dtype=bool)]
  off = off[np.isfinite(off)]
  if off.size == 0:
    return matplotlib.colors.Normalize(vmin=-1.0, vmax=1.0)
  lo = float(np.floor(min(off.min(), 0.99) * 20) / 20)
  mid = float(np.median(off))
  if not lo < mid < 1.0:
    mid = 0.5 * (lo + 1.0)
  return matplotlib.colors.TwoSlopeNorm(vcenter=mid, vmin=lo, vmax=1.0)


def heatmap_fontsize(m: int) -> float:
  """Tick-label font (points) of an ``m``-LLM heat-map: 9 down to 5."""
  return float(np.clip(10.0 - 0.045 * m, 5.0, 9.0))


def psi_heatmap(
    path,
    cos_mm: np.ndarray,
    corr_mm: np.ndarray,
    order_m: Sequence[int],
    names: Sequence[str],
    *,
    title: str = '',
    order_note: str = _ORDER_NOTE,
) -> Figure:
  """Two heat-maps of LLM similarity: raw and centred ``psi`` cosine.

  Sized for the number of LLMs ``m``: one row per LLM at a font that
  shrinks with ``m`` (:func:`heatmap_fontsize`), full LLM names as tick
  labels, a diverging colour map with a colour bar per panel, the value in
  each cell up to 16 LLMs, and the two panels stacked rather than side by
  side above :data:`HEATMAP_STACK_AT` LLMs.

  Args:
    path: output PNG.
    cos_mm: ``[m, m]`` cosine of the raw ``psi`` columns.
    corr_mm: ``[m, m]`` cosine of the centred columns.
    order_m: ``[m]`` display order (e.g. ``report.similarity_order``).
    names: ``[m]`` LLM names, in the matrices' order.
    title: first line of the figure title.
    order_note: how ``order_m`` was made (second line of the title).

  Returns:
    The figure (already written to ``path``).
  """
  order = np.asarray(order_m)
  m = len(order)
  if np.shape(cos_mm) != (len(names),) * 2 or np.shape(corr_mm) != np.shape(
      cos_mm
  ):
    raise ValueError(
        f'cos_mm, corr_mm: expected [{len(names)}, {len(names)}] (one row'
        f' per name), got {np.shape(cos_mm)} and {np.shape(corr_mm)}.'
    )
  labels = [str(names[i]) for i in order]
  fs = heatmap_fontsize(m)
  # One row per LLM at 1.45 x the font height; never below 4 inches.
  side = max(4.0, m * fs * 1.45 / 72.0)
  label_in = max(len(x) for x in labels) * fs * 0.55 / 72.0 if labels else 0
  stacked = m > HEATMAP_STACK_AT
  panel_w = side + label_in + 1.0  # matrix, y labels, colour bar
  panel_h = side + label_in + 0.9  # matrix, x labels, titles
  fig = Figure(
      figsize=(panel_w, 2 * panel_h) if stacked else (2 * panel_w, panel_h),
      layout='constrained',
  )
  axes = fig.subplots(2, 1) if stacked else fig.subplots(1, 2)
  for ax, sim, sub, centred in (
      (axes[0], cos_mm, 'cosine of psi columns', False),
      (axes[1], corr_mm, 'cosine of centred psi (error profile)', True),
  ):
    s = np.asarray(sim, np.float64)[np.ix_(order, order)]
    im = ax.imshow(
        s,
        cmap='RdBu_r',
        norm=_diverging_norm(s, centred),
        interpolation='nearest',
    )
    ax.set_xticks(range(m), labels, rotation=90, fontsize=fs)
    ax.set_yticks(range(m), labels, fontsize=fs)
    ax.tick_params(length=2, pad=1)
    ax.set_title(sub, fontsize=10)
    if m <= _CELL_VALUES:
      for (r, c), v in np.ndenumerate(s):
        ax.text(
            c,
            r,
            f'{v:.2f}'.replace('0.', '.', 1),
            ha='center',
            va='center',
            fontsize=fs - 2.5,
            color='white' if abs(im.norm(v) - 0.5) > 0.3 else 'black',
        )
    bar = fig.colorbar(im, ax=ax, shrink=0.6, pad=0.01, aspect=30)
    bar.ax.tick_params(labelsize=8)
    bar.set_label(
        'cosine (white: 0)' if centred else 'cosine (white: median)',
        fontsize=8,
    )
  fig.suptitle((title + '\n' if title else '') + order_note, fontsize=11)
  _save(fig, path, palette=True)
  return fig


def val_size_curve(
    path,
    n_val: Sequence[int],
    mean: Mapping[str, Sequence[float]],
    se: Mapping[str, Sequence[float]],
    *,
    title: str = '',
) -> Figure:
  """Area against the size of the probe (validation) set, ±2 s.e. bands."""
  fig = Figure(figsize=(7.5, 4.2))
  ax = fig.subplots()
  x = np.asarray(n_val)
  lines = []
  for name in mean:
    mu = np.asarray(mean[name])
    s = np.asarray(se[name])
    style = {k: v for k, v in _STYLE.get(name, {}).items() if k != 'ls'}
    (line,) = ax.plot(x, mu, marker='o', label=_LABELS.get(name, name), **style)
    lines.append(line)
    ax.fill_between(
        x, mu - 2 * s, mu + 2 * s, alpha=0.2, color=style.get('color')
    )
  ax.set_xlabel('N_val (labelled probe prompts per test LLM)')
  ax.set_ylabel('mean test Area')
  ax.set_title(title or 'Area vs N_val (bands: ±2 s.e.)', fontsize=9)
  ax.grid(alpha=0.3)
  if lines:
    _outside_legend(ax, lines, title='routers')
  _save(fig, path)
  return fig
