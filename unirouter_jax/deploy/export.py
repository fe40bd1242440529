"""Exporting a router to the portable JSON format, for gateways.

:func:`to_portable` builds the document that
:mod:`unirouter_jax.deploy.portable` reads (its docstring is the format);
:func:`write_portable` writes it atomically: into a temporary file beside
the destination, renamed over it only once complete, so a failed export
leaves no partial file and any previous export untouched.

Calibrated cost weights are computed on the router's held-out calibration
prompts (:mod:`unirouter_jax.deploy.heldout`): for the given budgets, or by
default for 11 budgets evenly spaced from the cheapest LLM's cost to the
mean cost of the most accurate routing (``lambda = 0``). A router that
keeps no held-out prompts is exported with ``calibration: null``.

Every cluster map is exported (``cluster_map``): K-means as before (format
version 1), soft k-means with its ``beta`` and a learned map with its
network's weights, layer by layer (format version 2), which the NumPy
reader applies.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from collections.abc import Sequence
from importlib import metadata

import jax
import numpy as np

from unirouter_jax.core.structs import Router
from unirouter_jax.deploy import calibration, checkpointing, heldout, portable
from unirouter_jax.deploy import cluster_map as maps
from unirouter_jax.deploy import router as router_lib
from unirouter_jax.deploy.route_records import clean

__all__ = ('default_budgets', 'to_portable', 'write_portable')

DEFAULT_NUM_BUDGETS = 11
# flax.linen.BatchNorm's default epsilon (ClusterNet keeps it).
BATCH_NORM_EPSILON = 1e-5


def _clean_array(a) -> list:
  """Nested lists of the shortest float32 representations of ``a``."""
  a = np.asarray(a)
  if a.ndim > 1:
    return [_clean_array(x) for x in a]
  return [clean(x) for x in a]


def default_budgets(router: Router, calib: heldout.CalibrationSet) -> list:
  """11 budgets from the cheapest routing's mean cost to that at lam = 0.

  Both ends as the calibration computes them (its float32 sums), so the
  cheapest budget is reached exactly.
  """
  ends = calibration.calibrate_budgets(
      router, calib.emb_cd, [0.0, float(np.finfo(np.float32).max)]
  )
  low, top = (float(c) for c in np.asarray(ends.cost))
  grid = np.linspace(low, max(top, low), DEFAULT_NUM_BUDGETS)
  return sorted({clean(b) for b in grid})


def _calibration(router, calib, budgets) -> dict | None:
  if calib is None:
    return None
  budgets = default_budgets(router, calib) if budgets is None else budgets
  cal = calibration.calibrate_budgets(router, calib.emb_cd, budgets)
  host = jax.tree.map(np.asarray, cal)
  points = [
      {
          'budget': clean(host.target[i]),
          'lambda': clean(host.lam[i]),
          'lambda_alt': clean(host.lam_alt[i]),
          'mix': clean(host.mix[i]),
          'mean_cost': clean(host.cost[i]),
          'mixed_mean_cost': clean(host.mixed_cost[i]),
          'reached': bool(host.reached[i]),
      }
      for i in range(len(budgets))
  ]
  return {
      'source': 'held-out prompts kept at fit',
      'num_prompts': calib.num_prompts,
      'points': points,
  }


def to_portable(
    router: Router,
    calib: heldout.CalibrationSet | None = None,
    *,
    budgets: Sequence[float] | None = None,
) -> dict:
  """The portable JSON document of ``router`` (see ``portable``).

  Args:
    router: the router (at least one LLM).
    calib: its held-out calibration prompts (None: no calibration).
    budgets: target mean costs to calibrate (default: 11 from the cheapest
      LLM's cost to the cost at ``lambda = 0``); needs ``calib``.
  """
  router_lib.pool_mask(router, None)  # refuses a router without LLMs
  heldout.check(router, calib)
  if budgets is not None and calib is None:
    raise ValueError(
        'budgets: this router keeps no held-out calibration prompts, so '
        'no budget can be calibrated; refit it with `unirouter fit`.'
    )
  real = np.asarray(router.cluster_mask_k, bool)
  cmap = maps.of(router)
  kind = maps.kind_of(cmap)
  count_km = np.asarray(router.count_km)[real]
  return {
      'format': portable.FORMAT,
      # Version 1 (K-means) is what readers without maps read.
      'format_version': 1 if kind == 'kmeans' else 2,
      'library_version': metadata.version('unirouter_jax'),
      'rule': portable.rule(kind),
      'cluster_map': _map_entry(cmap, real),
      'encoder': {
          'id': router.encoder_id or None,
          'weights_hash': router.encoder_hash or None,
      },
      'llm_names': list(router.llm_names),
      'cost_m': _clean_array(router.cost_m),
      'shrinkage': clean(router.shrinkage),
      'num_clusters': int(real.sum()),
      'dim': int(router.centroids_kd.shape[1]),
      # Real clusters only; they come first, so indices are unchanged.
      'centroids_kd': _clean_array(np.asarray(router.centroids_kd)[real]),
      'psi_km': _clean_array(np.asarray(router.psi_km)[real]),
      # Soft k-means counts are sums of responsibilities, not integers.
      'count_km': (
          _clean_array(count_km)
          if kind == 'soft'
          else np.rint(count_km).astype(int).tolist()
      ),
      'calibration': _calibration(router, calib, budgets),
  }


def _map_entry(cmap, real_k) -> dict:
  """The ``cluster_map`` entry: the kind, soft's ``beta``, or a learned
  map's network as a list of layers (the real clusters' outputs only)."""
  kind = maps.kind_of(cmap)
  if kind == 'kmeans':
    return {'kind': kind}
  if kind == 'soft':
    return {'kind': kind, 'beta': clean(cmap.beta)}
  variables = maps.trimmed(cmap, real_k).variables
  params, stats = variables['params'], variables.get('batch_stats', {})

  def dense(name):
    layer = {'op': 'dense', 'kernel': _clean_array(params[name]['kernel'])}
    if 'bias' in params[name]:
      layer['bias'] = _clean_array(params[name]['bias'])
    return layer

  def batch_norm(name):
    layer = {
        'op': 'batch_norm',
        'mean': _clean_array(stats[name]['mean']),
        'var': _clean_array(stats[name]['var']),
        'scale': _clean_array(params[name]['scale']),
        'epsilon': BATCH_NORM_EPSILON,
    }
    if 'bias' in params[name]:
      layer['bias'] = _clean_array(params[name]['bias'])
    return layer

  if cmap.arch == 'linear':
    layers = [dense('Dense_0')]
  else:  # estimators.learned_map.ClusterNet's MLP, in order
    layers = [batch_norm('BatchNorm_0')]
    for i in (0, 1):
      layers += [dense(f'Dense_{i}'), batch_norm(f'BatchNorm_{i + 1}')]
      layers.append({'op': 'relu'})
    layers.append(dense('Dense_2'))
  return {'kind': kind, 'arch': cmap.arch, 'layers': layers}


def write_portable(
    path,
    router: Router,
    calib: heldout.CalibrationSet | None = None,
    *,
    budgets: Sequence[float] | None = None,
) -> dict:
  """Writes :func:`to_portable` to ``path`` atomically; returns it."""
  doc = to_portable(router, calib, budgets=budgets)
  text = json.dumps(doc, indent=1, allow_nan=False) + '\n'
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.tmp-')
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
    os.chmod(tmp, checkpointing.umask_mode(0o666))
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return doc
