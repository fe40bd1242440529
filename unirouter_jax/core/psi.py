"""The LLM side of UniRoute: per-cluster error vectors ``Psi`` (method.md 2.1).

``Psi_k(h)`` is the mean error of LLM ``h`` on the labelled validation prompts
of cluster ``k``. Assignments may be hard (one-hot, K-means) or soft (rows of
a LearnedMap or soft k-means); the same weighted mean covers both.

**[project choice]** fall-backs, never NaN:

* a cluster with no visible label for an LLM (``count_km == 0``, including
  every padded cluster) takes the LLM's global error ``global_m``;
* ``global_m`` is the mean error over the visible labels of the prompts that
  count (weighted by each prompt's assignment mass ``sum_k a_qk``, i.e. 1 for
  a hard or soft assignment and 0 for an excluded prompt), so excluded
  prompts cannot leak into it;
* an LLM with no visible label at all gets ``NO_LABEL_ERROR`` = 0.5 (an
  uninformative error); :func:`global_error` is that rule for every
  estimator.

``shrunk_psi`` is the documented shrinkage extension: it blends the cluster
mean with ``global_m`` by cluster count (``strength`` pseudo-counts).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from unirouter_jax.core import kmeans
from unirouter_jax.core.structs import Clustering, LLMFeatures

Array = jax.Array

# [project choice] The error of an LLM with no usable label: uninformative.
NO_LABEL_ERROR = 0.5


def global_error(error_qm, visible_qm, weight_q=None) -> Array:
  """``[m]`` each LLM's mean error over its visible labels (weighted).

  The fall-back of every estimator (empty clusters, K-NN neighbourhoods
  without a label): ``NO_LABEL_ERROR`` for an LLM with no visible label.

  Args:
    error_qm: ``[q, m]`` errors (any value where not visible, NaN included).
    visible_qm: ``[q, m]`` bool, the labels that may be used.
    weight_q: optional ``[q]`` prompt weights (default 1).
  """
  dtype = jnp.result_type(error_qm, float)
  vis_qm = jnp.asarray(visible_qm, bool)
  w_q1 = (
      jnp.ones((vis_qm.shape[0], 1), dtype)
      if weight_q is None
      else jnp.asarray(weight_q, dtype)[:, None]
  )
  count_m = jnp.sum(jnp.where(vis_qm, w_q1, 0), axis=0)
  total_m = jnp.sum(jnp.where(vis_qm, w_q1 * error_qm, 0), axis=0)
  ok = count_m > 0
  return jnp.where(
      ok, total_m / jnp.where(ok, count_m, 1), NO_LABEL_ERROR
  ).astype(dtype)


def llm_features(
    assign_qk, error_qm, visible_qm, *, cluster_mask_k
) -> LLMFeatures:
  """Per-cluster mean error of every LLM.

  Args:
    assign_qk: ``[q, k_max]`` cluster weights of the labelled prompts (hard
      one-hot or soft); rows of zeros for prompts that must not count.
    error_qm: ``[q, m]`` errors ``1 - quality`` (any value where not visible,
      NaN included).
    visible_qm: ``[q, m]`` bool, True where the label may be used.
    cluster_mask_k: ``[k_max]`` bool, True for the real clusters.

  Returns:
    ``LLMFeatures`` with ``psi_km`` ``[k_max, m]``, ``count_km`` ``[k_max, m]``
    (0 on padded clusters) and ``global_m`` ``[m]``.
  """
  dtype = jnp.result_type(assign_qk, float)
  a_qk = jnp.where(cluster_mask_k[None, :], assign_qk, 0).astype(dtype)
  vis_qm = visible_qm.astype(dtype)
  err_qm = jnp.where(visible_qm, error_qm, 0).astype(dtype)
  hi = lax.Precision.HIGHEST
  count_km = jnp.matmul(a_qk.T, vis_qm, precision=hi)
  sum_km = jnp.matmul(a_qk.T, err_qm, precision=hi)
  global_m = global_error(error_qm, visible_qm, jnp.sum(a_qk, axis=1))
  has_km = (count_km > 0) & cluster_mask_k[:, None]
  psi_km = jnp.where(
      has_km, sum_km / jnp.where(has_km, count_km, 1), global_m[None, :]
  )
  return LLMFeatures(psi_km=psi_km, count_km=count_km, global_m=global_m)


def shrunk_psi(features: LLMFeatures, strength) -> Array:
  """``[k_max, m]`` ``(count * psi + strength * global) / (count + strength)``.

  ``strength`` (>= 0, may be traced) is a number of pseudo-prompts at the
  global error. ``strength = 0`` is the plain ``psi`` (which already falls
  back to ``global_m`` on empty clusters).
  """
  c_km = features.count_km
  g_1m = features.global_m[None, :]
  den_km = c_km + strength
  num_km = c_km * features.psi_km + strength * g_1m
  return jnp.where(den_km > 0, num_km / jnp.where(den_km > 0, den_km, 1), g_1m)


def cluster_features(
    emb_qd, clustering: Clustering, error_qm, visible_qm
) -> LLMFeatures:
  """``psi`` of labelled prompts assigned to their nearest centroid.

  The K-means table of method.md 2.1 (hard assignment); every hard-cluster
  ``psi`` of the package (protocol, router, calibration, reports) is built
  here. Arguments as :func:`llm_features`, with ``emb_qd`` ``[q, d]`` the
  embeddings of the labelled prompts.
  """
  return llm_features(
      kmeans.one_hot_assign(emb_qd, clustering),
      error_qm,
      visible_qm,
      cluster_mask_k=clustering.cluster_mask_k,
  )
