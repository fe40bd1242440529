"""The deployed routing rule: the map's estimate, then the cheapest best score.

Under K-means a prompt ``x`` goes to its nearest real centroid ``k``
(squared Euclidean distance ``|x|^2 - 2 x.c_k + |c_k|^2`` in float32; ties:
the lower cluster index) and then to the pool LLM of lowest score
``psi_km + lam * cost_m`` (float32). Under a soft or learned cluster map
(:mod:`unirouter_jax.deploy.cluster_map`) the score is
``gamma_m + lam * cost_m`` with ``gamma = Phi(x)^T psi``. **[project choice]** ties in score go to the cheaper LLM, then
to the lower index. The evaluation protocol's rule
(:func:`unirouter_jax.core.routing.plugin_route`) breaks ties by index
alone; a deployed router should not pay more for the same estimated score,
and exact ties are common at ``lam = 0``, where ``psi`` entries are
fractions of a few probe labels.

The router (:func:`unirouter_jax.deploy.router.route`), the calibration of
cost weights and the pure-NumPy reader of exported routers
(:mod:`unirouter_jax.deploy.portable`, whose JSON states this rule) all use
it, so they choose the same LLM for every prompt.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from unirouter_jax.core.structs import Clustering
from unirouter_jax.deploy import cluster_map as maps

Array = jax.Array


def _lex_min(a, b):
  """The lexicographically smaller of two (score, cost, index) triples."""
  (s_a, c_a, i_a), (s_b, c_b, i_b) = a, b
  take_a = (s_a < s_b) | (
      (s_a == s_b) & ((c_a < c_b) | ((c_a == c_b) & (i_a < i_b)))
  )
  return (
      jnp.where(take_a, s_a, s_b),
      jnp.where(take_a, c_a, c_b),
      jnp.where(take_a, i_a, i_b),
  )


def choose(gamma_qm, cost_m, lam, pool_m) -> Array:
  """``[q]`` int32 pool LLM of lowest ``gamma + lam * cost``.

  One reduction over (score, cost, index) triples, so every score is
  computed once: a separate ``min`` and ``==`` may be compiled as two
  computations of the score that differ in the last bit (fused multiply-
  add in one and not the other), and then find no tie at all.

  Args:
    gamma_qm: ``[q, m]`` estimated errors.
    cost_m: ``[m]`` cost per query.
    lam: ``[]`` or ``[q]`` cost weight (per prompt for randomised mixing).
    pool_m: ``[m]`` bool, the candidates (at least one True).

  Returns:
    ``[q]`` the choice; among equal scores the cheapest, then the lowest
    index.
  """
  lam_q1 = jnp.reshape(lam, (-1, 1))
  shape = jnp.broadcast_shapes(gamma_qm.shape, lam_q1.shape)
  score_qm = jnp.where(
      pool_m[None, :], gamma_qm + lam_q1 * cost_m[None, :], jnp.inf
  )
  cost_qm = jnp.broadcast_to(jnp.where(pool_m, cost_m, jnp.inf), shape)
  index_qm = jnp.broadcast_to(jnp.arange(shape[1], dtype=jnp.int32), shape)
  inf = jnp.asarray(jnp.inf, score_qm.dtype)
  _, _, choice_q = lax.reduce(
      (jnp.broadcast_to(score_qm, shape), cost_qm, index_qm),
      (inf, inf.astype(cost_qm.dtype), jnp.int32(shape[1])),
      _lex_min,
      (1,),
  )
  return jnp.minimum(choice_q, shape[1] - 1)


@jax.jit
def route_arrays(
    centroids_kd,
    cluster_mask_k,
    psi_km,
    cost_m,
    pool_m,
    emb_qd,
    lam,
    cluster_map: maps.ClusterMap | None = None,
):
  """``(choice_q, gamma_qm, cluster_q)``; ``lam`` is ``[]`` or ``[q]``.

  ``cluster_map`` None is K-means (:func:`cluster_map.gamma`).
  """
  clustering = Clustering(centroids_kd, cluster_mask_k, 0.0, 0)
  gamma_qm, cluster_q = maps.gamma(cluster_map, clustering, psi_km, emb_qd)
  return choose(gamma_qm, cost_m, lam, pool_m), gamma_qm, cluster_q
