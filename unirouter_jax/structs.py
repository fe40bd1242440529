"""Pytree data model of unirouter_jax.

Every array carries its axes in its name suffix. The glossary, used in every
module of the package:

  n  prompts                 d  embedding dimension
  k  clusters (padded to k_max; ``cluster_mask_k`` marks the real ones)
  m  LLMs (padded to m_max; pool masks mark the members of a pool)
  l  cost weights (lambdas)  g  points of the common normalised-cost grid
  p  points of a deferral curve before its envelope is taken
  s  sweep points / trials   t  optimisation steps

All containers are frozen ``flax.struct`` dataclasses, so they are pytrees:
they pass through ``jit``, ``vmap`` and ``lax.scan`` unchanged. Static,
non-array metadata (names) is marked ``pytree_node=False``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = jax.Array


def _check(cond: bool, arg: str, expected: str, got: Any) -> None:
  if not cond:
    raise ValueError(f'{arg}: expected {expected}, got {got}.')


@struct.dataclass
class RoutingData:
  """A routing dataset on the device.

  Attributes:
    emb_nd: ``[n, d]`` prompt embeddings.
    quality_nm: ``[n, m]`` quality labels in [0, 1] (0 where missing).
    label_mask_nm: ``[n, m]`` True where a label exists.
    cost_nm: ``[n, m]`` cost of LLM m on prompt n (per-LLM costs broadcast).
    llm_names: ``m`` names (static).
  """

  emb_nd: Array
  quality_nm: Array
  label_mask_nm: Array
  cost_nm: Array
  llm_names: tuple[str, ...] = struct.field(pytree_node=False, default=())

  @property
  def num_prompts(self) -> int:
    return self.emb_nd.shape[0]

  @property
  def num_llms(self) -> int:
    return self.quality_nm.shape[1]

  @classmethod
  def create(
      cls,
      emb_nd,
      quality_nm,
      cost,
      label_mask_nm=None,
      llm_names=None,
  ) -> RoutingData:
    """Validates host arrays and builds the device dataset.

    Args:
      emb_nd: ``[n, d]`` embeddings.
      quality_nm: ``[n, m]`` labels in [0, 1]; NaN marks a missing label when
        ``label_mask_nm`` is None.
      cost: ``[m]`` per-LLM or ``[n, m]`` per-prompt costs, finite and >= 0.
      label_mask_nm: optional ``[n, m]`` bool, True where labelled.
      llm_names: optional ``m`` names.

    Raises:
      ValueError: naming the argument, on wrong shapes or values.
    """
    emb = np.asarray(emb_nd, np.float32)
    q = np.asarray(quality_nm, np.float32)
    _check(emb.ndim == 2, 'emb_nd', 'a 2-D [n, d] array', emb.shape)
    _check(q.ndim == 2, 'quality_nm', 'a 2-D [n, m] array', q.shape)
    n, m = q.shape
    _check(emb.shape[0] == n, 'emb_nd', f'{n} rows (as quality_nm)', emb.shape)
    _check(
        n > 0 and m > 0, 'quality_nm', 'at least one prompt and LLM', q.shape
    )
    if label_mask_nm is None:
      mask = ~np.isnan(q)
    else:
      mask = np.asarray(label_mask_nm, bool)
      _check(
          mask.shape == q.shape, 'label_mask_nm', f'shape {q.shape}', mask.shape
      )
    _check(np.isfinite(emb).all(), 'emb_nd', 'finite values', 'NaN or inf')
    qv = q[mask]
    _check(
        np.isfinite(qv).all() and ((qv >= 0) & (qv <= 1)).all(),
        'quality_nm',
        'labels in [0, 1]',
        f'values in [{np.nanmin(qv) if qv.size else 0}, '
        f'{np.nanmax(qv) if qv.size else 0}]',
    )
    q = np.where(mask, q, 0.0).astype(np.float32)
    c = np.asarray(cost, np.float32)
    if c.ndim == 1:
      _check(c.shape == (m,), 'cost', f'[m]=[{m}] or [n, m]', c.shape)
      c = np.broadcast_to(c[None, :], (n, m))
    _check(
        c.shape == (n, m), 'cost', f'[m]=[{m}] or [n, m]=[{n}, {m}]', c.shape
    )
    _check(np.isfinite(c).all(), 'cost', 'finite values', 'NaN or inf')
    _check((c >= 0).all(), 'cost', 'non-negative values', f'min {c.min()}')
    names = (
        tuple(llm_names)
        if llm_names is not None
        else tuple(f'llm_{i}' for i in range(m))
    )
    _check(len(names) == m, 'llm_names', f'{m} names', len(names))
    return cls(
        emb_nd=jnp.asarray(emb),
        quality_nm=jnp.asarray(q),
        label_mask_nm=jnp.asarray(mask),
        cost_nm=jnp.asarray(np.ascontiguousarray(c)),
        llm_names=names,
    )


@struct.dataclass
class Clustering:
  """K-means result, padded to ``k_max`` clusters.

  Attributes:
    centroids_kd: ``[k_max, d]`` centroids (padded rows are zero).
    cluster_mask_k: ``[k_max]`` True for the real clusters.
    inertia: ``[]`` weighted sum of squared distances to the nearest centroid.
    n_iter: ``[]`` Lloyd iterations run before convergence.
  """

  centroids_kd: Array
  cluster_mask_k: Array
  inertia: Array
  n_iter: Array


@struct.dataclass
class LLMFeatures:
  """Per-cluster error table ``psi`` of a set of LLMs (method.md 2.1).

  Attributes:
    psi_km: ``[k_max, m]`` mean error of LLM m on the labelled prompts of
      cluster k; the LLM's global error where the cluster has no labels.
    count_km: ``[k_max, m]`` (soft) number of labelled prompts behind each
      entry.
    global_m: ``[m]`` mean error over all labelled prompts.
  """

  psi_km: Array
  count_km: Array
  global_m: Array


@struct.dataclass
class Split:
  """One trial's split of LLMs and prompts, as fixed-size index arrays.

  Sizes are equal across trials, so splits stack along a leading ``s`` axis.

  Attributes:
    train_idx: ``[n_train]`` training prompts.
    val_idx: ``[n_val]`` validation prompts.
    test_idx: ``[n_test]`` test prompts.
    train_llm_m: ``[m]`` training LLMs.
    test_llm_m: ``[m]`` test LLMs (disjoint from training ones in the
      dynamic protocol, equal in the static one).
    key: the trial's PRNG key for the estimators (k-means++, minibatches),
      carried with the split so a trial gives the same result whether it
      runs alone or batched with others.
  """

  train_idx: Array
  val_idx: Array
  test_idx: Array
  train_llm_m: Array
  test_llm_m: Array
  key: Array


@struct.dataclass
class CurveMetrics:
  """Metrics of one deferral curve (method.md section 3).

  Attributes:
    quality_g: ``[g]`` the curve (upper concave envelope) on the common
      normalised-cost grid.
    area: integral of the curve over normalised cost [0, 1].
    area50: integral over [0, 0.5], not rescaled.
    qnc: quality-neutral cost (ratio; ``inf`` when never reached).
    peak: maximum quality of the curve.
  """

  quality_g: Array
  area: Array
  area50: Array
  qnc: Array
  peak: Array


@struct.dataclass
class RoutingResult:
  """Routing decisions for a batch of prompts.

  Attributes:
    choice_n: ``[n]`` index of the chosen LLM.
    gamma_nm: ``[n, m]`` estimated error of every candidate.
    cost_nm: ``[n, m]`` cost the rule charged for every candidate.
    cluster_n: ``[n]`` nearest cluster (or most likely one for soft maps).
  """

  choice_n: Array
  gamma_nm: Array
  cost_nm: Array
  cluster_n: Array
