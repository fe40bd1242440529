"""Which estimators a run uses: built-in names or a user's ``module:function``.

``resolve_method`` and ``select_estimators`` turn the names of a
``workdir.RunSpec`` into :class:`~unirouter_jax.estimators.base.Estimator` s
(cached, so runs in one process share compiled programs);
``grid_overrides`` turns its ``kmeans_k`` / ``knn_k`` into grids.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from typing import Any

import numpy as np

from unirouter_jax.estimators import builtin as methods_lib
from unirouter_jax.estimators import probing
from unirouter_jax.estimators.base import Estimator


@functools.lru_cache(maxsize=8)
def _estimators(epochs_scale: float, arch: str) -> dict[str, Any]:
  # Cached so that runs in one process share Estimator objects, and with
  # them the protocol's compiled program (its cache keys on the functions).
  est = methods_lib.builtin_estimators(epochs_scale=epochs_scale)
  # Built on UniRoute (K-means) in estimators.probing (which imports
  # builtin), so it joins the mapping here rather than in builtin.
  est['uniroute_hierarchical'] = probing.uniroute_hierarchical()
  if arch != 'mlp':
    epochs = max(1, int(round(5 * epochs_scale)))
    for psi_from, name in (
        ('val', 'uniroute_learned_map'),
        ('train', 'uniroute_learned_map_train_psi'),
    ):
      est[name] = methods_lib.uniroute_learned_map(
          arch=arch, epochs=epochs, psi_from=psi_from
      )
  return est


@functools.lru_cache(maxsize=32)
def _user_estimator(spec_text: str) -> Estimator:
  module, _, attr = spec_text.partition(':')
  # Console scripts do not put the working directory on sys.path; a user's
  # module (e.g. examples/...) is looked up there too.
  if os.getcwd() not in sys.path:
    sys.path.append(os.getcwd())
  try:
    factory = getattr(importlib.import_module(module), attr)
  except (ImportError, AttributeError) as e:
    raise ValueError(
        f'methods: cannot import {spec_text!r} ({type(e).__name__}: {e}).'
    ) from None
  est = factory()
  if not isinstance(est, Estimator):
    raise ValueError(
        f'methods: {spec_text!r} returned {type(est).__name__}, expected an '
        'unirouter_jax.Estimator.'
    )
  return est


def resolve_method(name: str, epochs_scale: float, arch: str) -> Estimator:
  """A built-in estimator by name, or a user's as ``module:function``.

  ``module:function`` names a factory returning an :class:`Estimator`; the
  module is imported because the user named it (an explicit import, not a
  registry), e.g. ``examples.low_rank_uniroute:estimator``.

  Raises:
    ValueError: unknown name or a factory that cannot be imported.
  """
  if ':' in name:
    return _user_estimator(name)
  est = _estimators(float(epochs_scale), arch)
  if name not in est:
    raise ValueError(
        f'methods: unknown method {name!r}; expected some of '
        f'{", ".join(est)} or module:function.'
    )
  return est[name]


def select_estimators(spec: Any) -> dict[str, Estimator]:
  """The requested estimators by table name, in ``spec.methods`` order."""
  out = {}
  for name in spec.methods:
    est = resolve_method(name, spec.epochs_scale, spec.learned_map_arch)
    out[est.name if ':' in name else name] = est
  return out


def grid_overrides(spec: Any, estimators) -> dict[str, dict]:
  """Hyperparameter grids given in the spec (others use method.md 2.4)."""
  grids = {}
  ks = np.asarray(spec.kmeans_k, np.int32)
  if ks.size:
    for name in estimators:
      if name == 'uniroute_kmeans' or name.startswith('uniroute_learned_map'):
        grids[name] = {'k': ks}
  if len(spec.knn_k) and 'knn' in estimators:
    grids['knn'] = {'k': np.asarray(spec.knn_k, np.int32)}
  return grids
