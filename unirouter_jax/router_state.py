"""State of the user-facing router: the :class:`Router` pytree, the routing
output, and the derived per-cluster tables (see :mod:`unirouter_jax.router`
for the functions around them and the project choices behind the tables).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax

from unirouter_jax import features, kmeans
from unirouter_jax.structs import Clustering

Array = jax.Array


@struct.dataclass
class Router:
  """A fitted UniRoute (K-means) router. Axes: ``k`` clusters (padded),
  ``d`` embedding dim, ``p`` probe prompts, ``m`` LLMs.

  Attributes:
    centroids_kd: ``[k, d]`` cluster centroids (padded rows are zero).
    cluster_mask_k: ``[k]`` True for the real clusters.
    probe_emb_pd: ``[p, d]`` embeddings of the probe prompts.
    probe_error_pm: ``[p, m]`` ``1 - quality`` of every LLM on the probe set
      (0 where missing).
    probe_visible_pm: ``[p, m]`` True where a probe label exists.
    cost_m: ``[m]`` cost per query of every LLM.
    shrinkage: ``[]`` pseudo-count pulling ``psi`` toward the global error.
    psi_km: ``[k, m]`` per-cluster estimated error used for routing.
    count_km: ``[k, m]`` probe labels behind each entry.
    se_km: ``[k, m]`` standard error of the raw cluster mean (see module).
    global_m: ``[m]`` mean probe error of every LLM.
    llm_names: ``m`` names (static).
    probe_ids: ``p`` probe prompt ids (static).
    probe_texts: ``p`` probe prompt texts (static).
    encoder_id: identifier of the prompt encoder (static).
    encoder_hash: hash of the encoder weights (static; '' if unknown).
  """

  centroids_kd: Array
  cluster_mask_k: Array
  probe_emb_pd: Array
  probe_error_pm: Array
  probe_visible_pm: Array
  cost_m: Array
  shrinkage: Array
  psi_km: Array
  count_km: Array
  se_km: Array
  global_m: Array
  llm_names: tuple[str, ...] = struct.field(pytree_node=False, default=())
  probe_ids: tuple[str, ...] = struct.field(pytree_node=False, default=())
  probe_texts: tuple[str, ...] = struct.field(pytree_node=False, default=())
  encoder_id: str = struct.field(pytree_node=False, default='')
  encoder_hash: str = struct.field(pytree_node=False, default='')

  @property
  def num_llms(self) -> int:
    return len(self.llm_names)

  @property
  def num_clusters(self) -> int:
    return int(np.asarray(self.cluster_mask_k).sum())

  @property
  def clustering(self) -> Clustering:
    zero = jnp.zeros((), self.centroids_kd.dtype)
    return Clustering(self.centroids_kd, self.cluster_mask_k, zero, zero)


@struct.dataclass
class RouteOutput:
  """Routing decisions with every alternative. Axes: ``q`` prompts.

  Attributes:
    choice_q: ``[q]`` index of the chosen LLM.
    gamma_qm: ``[q, m]`` estimated error of every LLM (1 - quality).
    cost_m: ``[m]`` cost the rule charged.
    cluster_q: ``[q]`` nearest cluster of each prompt.
    lam: ``[]`` the cost weight used.
    llm_names: ``m`` names (static).
  """

  choice_q: Array
  gamma_qm: Array
  cost_m: Array
  cluster_q: Array
  lam: Array
  llm_names: tuple[str, ...] = struct.field(pytree_node=False, default=())

  @property
  def quality_qm(self) -> Array:
    """``[q, m]`` estimated quality ``1 - gamma``."""
    return 1.0 - self.gamma_qm

  @property
  def choice_names(self) -> list[str]:
    return [self.llm_names[i] for i in np.asarray(self.choice_q)]


def tables(
    centroids_kd, cluster_mask_k, probe_emb_pd, error_pm, visible_pm, shrinkage
):
  """``(psi_km, count_km, se_km, global_m)`` from the probe labels."""
  clustering = Clustering(centroids_kd, cluster_mask_k, 0.0, 0)
  a_pk = kmeans.one_hot_assign(probe_emb_pd, clustering)
  feats = features.llm_features(
      a_pk, error_pm, visible_pm, cluster_mask_k=cluster_mask_k
  )
  err_pm = jnp.where(visible_pm, error_pm, 0.0)
  hi = lax.Precision.HIGHEST
  sum_km = jnp.matmul(a_pk.T, err_pm, precision=hi)
  sq_km = jnp.matmul(a_pk.T, err_pm * err_pm, precision=hi)
  c1_km = feats.count_km + 1.0
  var_km = (sq_km + 0.5) / c1_km - ((sum_km + 0.5) / c1_km) ** 2
  se_km = jnp.sqrt(jnp.maximum(var_km, 0.0) / c1_km)
  psi_km = features.shrunk_psi(feats, shrinkage)
  return psi_km, feats.count_km, se_km, feats.global_m


tables_jit = jax.jit(tables)


def rebuild(router: Router, **changes) -> Router:
  """``router.replace(**changes)`` with the derived tables recomputed."""
  r = router.replace(**changes)
  psi, count, se, glob = tables_jit(
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
