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
* an LLM with no visible label at all gets 0.5 (an uninformative error).

``shrunk_psi`` is the documented shrinkage extension: it blends the cluster
mean with ``global_m`` by cluster count (``strength`` pseudo-counts).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from unirouter_jax.structs import LLMFeatures

Array = jax.Array

_NO_LABEL_ERROR = 0.5


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
  total_count_m = jnp.sum(count_km, axis=0)
  global_m = jnp.where(
      total_count_m > 0,
      jnp.sum(sum_km, axis=0) / jnp.where(total_count_m > 0, total_count_m, 1),
      _NO_LABEL_ERROR,
  ).astype(dtype)
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
