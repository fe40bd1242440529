"""State of the user-facing router: the :class:`Router` pytree, the routing
output, and the derived per-cluster tables (see :mod:`unirouter_jax.deploy.router`
for the functions around them and the project choices behind the tables).

:class:`Router` is :class:`unirouter_jax.core.structs.Router`; its
``cluster_map`` (:mod:`unirouter_jax.deploy.cluster_map`) is None for
K-means.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from unirouter_jax.core import psi, structs
from unirouter_jax.core.structs import Clustering
from unirouter_jax.deploy import cluster_map as maps

Array = jax.Array


# The router pytree (its ``cluster_map``: a ``cluster_map.ClusterMap`` or
# None for K-means).
Router = structs.Router


def tables(
    cmap,
    centroids_kd,
    cluster_mask_k,
    probe_emb_pd,
    error_pm,
    visible_pm,
    shrinkage,
):
  """``(psi_km, count_km, se_km, global_m)`` from the probe labels.

  The probe prompts count with their weights under the map
  (:func:`unirouter_jax.deploy.cluster_map.psi_weights`): one-hot, or soft
  k-means responsibilities (then counts and sums are weighted).
  """
  clustering = Clustering(centroids_kd, cluster_mask_k, 0.0, 0)
  a_pk = maps.psi_weights(cmap, clustering, probe_emb_pd)
  feats = psi.llm_features(
      a_pk, error_pm, visible_pm, cluster_mask_k=cluster_mask_k
  )
  err_pm = jnp.where(visible_pm, error_pm, 0.0)
  hi = lax.Precision.HIGHEST
  sum_km = jnp.matmul(a_pk.T, err_pm, precision=hi)
  sq_km = jnp.matmul(a_pk.T, err_pm * err_pm, precision=hi)
  c1_km = feats.count_km + 1.0
  var_km = (sq_km + 0.5) / c1_km - ((sum_km + 0.5) / c1_km) ** 2
  se_km = jnp.sqrt(jnp.maximum(var_km, 0.0) / c1_km)
  psi_km = psi.shrunk_psi(feats, shrinkage)
  return psi_km, feats.count_km, se_km, feats.global_m


tables_jit = jax.jit(tables)


def rebuild(router: structs.Router, **changes) -> structs.Router:
  """``router.replace(**changes)`` with the derived tables recomputed."""
  r = router.replace(**changes)
  psi, count, se, glob = tables_jit(
      maps.of(r),
      r.centroids_kd,
      r.cluster_mask_k,
      r.probe_emb_pd,
      r.probe_error_pm,
      r.probe_visible_pm,
      r.shrinkage,
  )
  return r.replace(psi_km=psi, count_km=count, se_km=se, global_m=glob)


def check_names(names: Sequence[str], arg: str) -> tuple[str, ...]:
  names = tuple(str(x) for x in names)
  dup = sorted({x for x in names if names.count(x) > 1})
  if dup:
    raise ValueError(f'{arg}: duplicate LLM names {dup}.')
  if any(not x for x in names):
    raise ValueError(f'{arg}: LLM names must be non-empty strings.')
  return names


def check_cost(cost, arg: str) -> np.ndarray:
  c = np.asarray(cost, np.float32)
  if not np.isfinite(c).all() or (c < 0).any():
    raise ValueError(f'{arg}: expected finite costs >= 0, got {cost!r}.')
  return c


def check_shrinkage(shrinkage) -> float:
  s = float(shrinkage)
  if not (np.isfinite(s) and s >= 0):
    raise ValueError(f'shrinkage: expected a finite value >= 0, got {s!r}.')
  return s


def check_some_llms(m: int, arg: str, hint: str = '') -> None:
  """ValueError unless there is at least one LLM (``m`` of them)."""
  if m == 0:
    raise ValueError(f'{arg}: a router needs at least one LLM, got none{hint}.')
