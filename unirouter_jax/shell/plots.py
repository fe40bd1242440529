"""PNG plots of protocol runs (the only module that imports matplotlib).

Every function reads plain host data (the ``summary.json`` dict written by
:mod:`unirouter_jax.shell.workdir`, or NumPy arrays) and writes one PNG
atomically. Figures are built with the object API (``matplotlib.figure``),
so no display is needed and a notebook's pyplot backend is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from unirouter_jax.shell import chunks
from unirouter_jax.shell.report import LABELS as _LABELS

_STYLE = {
    'zero_router': dict(color='tab:gray', ls='--'),
    'knn': dict(color='tab:orange'),
    'uniroute_kmeans': dict(color='tab:blue', lw=2.2),
    'uniroute_soft_kmeans': dict(color='tab:cyan'),
    'uniroute_learned_map': dict(color='tab:green', lw=1.8),
    'uniroute_learned_map_train_psi': dict(color='tab:olive', lw=1.4),
    'mlp_oracle': dict(color='tab:purple', ls=':'),
    'matfac_oracle': dict(color='tab:brown', ls=':'),
    'oracle': dict(color='black', ls='-.', lw=1.0),
}


def _save(fig, path: str | os.PathLike) -> None:
  chunks.atomic_write(
      path,
      lambda f: fig.savefig(f, format='png', dpi=120, bbox_inches='tight'),
      mode='wb',
  )


def deferral_curves(
    path, summary: Mapping[str, Any], *, with_oracle: bool = True
) -> None:
  """Mean deferral curves with 95% bands; single LLMs trial by trial.

  Curves and points share one axis and one set of trials: each curve is the
  mean over all trials of that trial's curve (normalised cost of that
  trial's test pool), with the normal 95% band of the mean; each single LLM
  is drawn at its position in every trial where it is a test LLM (small
  translucent points), never as an average over a different set of trials.

  Args:
    path: output PNG.
    summary: a ``summary.json`` dict (``grid``, ``mean_curves``, and when
      present ``curve_bands`` and ``single_llm_trials``).
    with_oracle: also draw the per-prompt Oracle (the headroom).
  """
  grid = np.asarray(summary['grid'])
  bands = summary.get('curve_bands', {})
  fig = Figure(figsize=(8.0, 5.4))
  ax = fig.subplots()
  for name, curve in summary['mean_curves'].items():
    if name == 'oracle' and not with_oracle:
      continue
    style = _STYLE.get(name, {})
    (line,) = ax.plot(grid, curve, label=_LABELS.get(name, name), **style)
    if name in bands:
      lo, hi = (np.asarray(b, np.float64) for b in bands[name])
      ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
  trials = summary.get('single_llm_trials', {})
  # Many LLMs: colour and name only the five best, the rest in grey.
  best = sorted(trials, key=lambda n: -float(np.mean(trials[n]['quality'])))
  named = best if len(best) <= 8 else best[:5]
  colours = matplotlib.colormaps['Dark2'].colors
  for name, p in trials.items():
    i = named.index(name) if name in named else None
    ax.scatter(
        p['x'],
        p['quality'],
        s=9,
        alpha=0.35 if i is not None else 0.15,
        color=colours[i % len(colours)] if i is not None else 'tab:gray',
        lw=0,
        zorder=3,
        label=None if i is None else f'{name.split("/")[-1][:28]} (per trial)',
    )
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
  ax.legend(fontsize=6.5, loc='lower right', ncol=2, markerscale=2.5)
  _save(fig, path)


def area_vs_hp(path, summary: Mapping[str, Any]) -> None:
  """Mean test Area against K (clusters) or k (neighbours), with the
  fraction of trials that selected each value as marker size."""
  hps = {
      n: h
      for n, h in summary.get('hyperparameters', {}).items()
      if h['hp'] == 'k'
      and len(h['values']) > 1
      and h['test_area_mean'] is not None
  }
  fig = Figure(figsize=(6.5, 4.2))
  ax = fig.subplots()
  for name, h in hps.items():
    k = np.asarray(h['values'])
    mean = np.asarray(h['test_area_mean'])
    sd = np.asarray(h['test_area_std'])
    se = sd / np.sqrt(max(summary['trials'], 1))
    style = {k_: v for k_, v in _STYLE.get(name, {}).items() if k_ != 'ls'}
    ax.plot(k, mean, marker='o', label=_LABELS.get(name, name), **style)
    ax.fill_between(
        k, mean - 2 * se, mean + 2 * se, alpha=0.15, color=style.get('color')
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
      'bands: ±2 s.e.)',
      fontsize=9,
  )
  ax.grid(alpha=0.3)
  if hps:
    ax.legend(fontsize=7)
  _save(fig, path)


def psi_heatmap(
    path,
    cos_mm: np.ndarray,
    corr_mm: np.ndarray,
    order_m: Sequence[int],
    names: Sequence[str],
    *,
    title: str = '',
) -> None:
  """Two heat-maps of LLM similarity: raw and centred ``psi`` cosine."""
  order = np.asarray(order_m)
  labels = [names[i].split('/')[-1][:28] for i in order]
  m = len(order)
  size = min(4.0 + 0.16 * m, 22.0)
  fig = Figure(figsize=(2 * size + 1.5, size))
  axes = fig.subplots(1, 2)
  for ax, sim, sub in (
      (axes[0], cos_mm, 'cosine of psi columns'),
      (axes[1], corr_mm, 'cosine of centred psi (error profile)'),
  ):
    s = np.asarray(sim)[np.ix_(order, order)]
    lo = -1.0 if s.min() < 0 else float(np.floor(s.min() * 10) / 10)
    im = ax.imshow(s, cmap='viridis', vmin=lo, vmax=1.0)
    fs = max(3, min(8, int(300 / max(m, 1))))
    ax.set_xticks(range(m), labels, rotation=90, fontsize=fs)
    ax.set_yticks(range(m), labels, fontsize=fs)
    ax.set_title(sub, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.7)
  fig.suptitle(
      (title + '\n' if title else '')
      + 'LLMs ordered by the first principal component of centred psi',
      fontsize=10,
  )
  _save(fig, path)


def val_size_curve(
    path,
    n_val: Sequence[int],
    mean: Mapping[str, Sequence[float]],
    se: Mapping[str, Sequence[float]],
    *,
    title: str = '',
) -> None:
  """Area against the size of the probe (validation) set, ±2 s.e. bands."""
  fig = Figure(figsize=(6.5, 4.2))
  ax = fig.subplots()
  x = np.asarray(n_val)
  for name in mean:
    mu = np.asarray(mean[name])
    s = np.asarray(se[name])
    style = {k: v for k, v in _STYLE.get(name, {}).items() if k != 'ls'}
    ax.plot(x, mu, marker='o', label=_LABELS.get(name, name), **style)
    ax.fill_between(
        x, mu - 2 * s, mu + 2 * s, alpha=0.2, color=style.get('color')
    )
  ax.set_xlabel('N_val (labelled probe prompts per test LLM)')
  ax.set_ylabel('mean test Area')
  ax.set_title(title or 'Area vs N_val (bands: ±2 s.e.)', fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  _save(fig, path)
