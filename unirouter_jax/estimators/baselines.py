"""Baseline estimators of ``gamma`` and ZeroRouter (method.md 2.3).

* **ZeroRouter** ignores the prompt. The rule ``argmin err(h) + lam c(h)``
  over the pool, with mixing, reaches exactly the LLMs on the lower convex
  hull of (validation cost, validation error) between the cheapest LLM and
  the most accurate one. ``zero_router_points`` returns those LLMs' **test**
  (cost, quality) as curve points. Random mixing between hull neighbours is
  the straight segment between their points, which the upper envelope of
  ``curves.curve_metrics`` represents exactly, so nothing is sampled.
* **K-NN**: mean validation error of the k nearest validation prompts.
* **Oracle**: the true test labels as ``gamma`` (headroom).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from unirouter_jax.core import batching, curves, psi

Array = jax.Array


def zero_router_points(
    val_error_m, val_cost_m, test_quality_m, test_cost_m, pool_mask_m
):
  """ZeroRouter's curve points (``p = m``).

  Args:
    val_error_m: ``[m]`` validation error of each LLM.
    val_cost_m: ``[m]`` cost the rule charges (validation mean cost).
    test_quality_m: ``[m]`` mean test quality.
    test_cost_m: ``[m]`` mean test cost (raw; normalise with
      ``curves.normalise_cost`` like any deferral points).
    pool_mask_m: ``[m]`` bool, the pool.

  Returns:
    ``(cost_p, quality_p, mask_p)``: the test points, and True for the pool
    LLMs on the lower convex hull of (val cost, val error) from the cheapest
    (lowest error among equal costs) to the most accurate (cheapest among
    equal errors). Exact duplicates keep the lowest index; collinear LLMs
    are not vertices (they add nothing to the envelope).
  """
  mask_p = curves.hull_vertices(val_cost_m, -val_error_m, pool_mask_m)
  return test_cost_m, test_quality_m, mask_p


def _knn_one(emb_d, emb_vd, v2_v, err_vm, vis_vm, fallback_m, k, k_max):
  """``[m]`` K-NN error estimate for one query."""
  dot_v = jnp.matmul(emb_vd, emb_d, precision=lax.Precision.HIGHEST)
  d_v = v2_v - 2.0 * dot_v  # ||q||^2 is constant over v: ranks unchanged.
  _, idx_r = lax.top_k(-d_v, k_max)
  use_r1 = (jnp.arange(k_max) < k)[:, None]
  vis_rm = vis_vm[idx_r] & use_r1
  cnt_m = jnp.sum(vis_rm, axis=0)
  sum_m = jnp.sum(jnp.where(vis_rm, err_vm[idx_r], 0.0), axis=0)
  return jnp.where(cnt_m > 0, sum_m / jnp.maximum(cnt_m, 1), fallback_m)


def knn_gamma(
    emb_qd,
    emb_vd,
    error_vm,
    visible_vm,
    k,
    *,
    k_max: int,
    batch_size=256,
    mask_v=None,
) -> Array:
  """``[q, m]`` mean error over the ``k`` nearest labelled prompts.

  Euclidean distance (embeddings need not be normalised); ties go to the
  lower validation index. Per LLM, neighbours without a visible label are
  skipped (not replaced); an LLM with no visible label among the ``k``
  gets its global visible mean error (0.5 with no visible label at all).
  Queries are processed in even chunks of at most ``batch_size``.

  Args:
    emb_qd: ``[q, d]`` query embeddings.
    emb_vd: ``[v, d]`` labelled (validation) embeddings.
    error_vm: ``[v, m]`` errors ``1 - quality``.
    visible_vm: ``[v, m]`` bool, usable labels.
    k: neighbours, Python or traced int, ``1 <= k <= k_max``.
    k_max: static bound on ``k``, ``<= v``.
    batch_size: static query chunk size.
    mask_v: optional ``[v]`` bool, the real validation prompts (padded
      probe sets): the others are never neighbours.

  Raises:
    ValueError: naming the argument, on a bad ``k_max`` or Python-int ``k``.
  """
  v = np.shape(emb_vd)[0]
  if not isinstance(k_max, (int, np.integer)) or not 1 <= k_max <= v:
    raise ValueError(f'k_max: expected an int in [1, v={v}], got {k_max!r}.')
  if isinstance(k, (int, np.integer)) and not 1 <= k <= k_max:
    raise ValueError(f'k: expected 1 <= k <= k_max={k_max}, got {k}.')
  visible_vm = jnp.asarray(visible_vm, bool)
  if mask_v is not None:
    visible_vm = visible_vm & mask_v[:, None]
  err_vm = jnp.where(visible_vm, error_vm, 0.0)
  fallback_m = psi.global_error(err_vm, visible_vm)
  v2_v = jnp.sum(emb_vd * emb_vd, axis=-1)
  if mask_v is not None:  # padding ranks last and is never used
    v2_v = jnp.where(mask_v, v2_v, jnp.inf)
  one = functools.partial(
      _knn_one,
      emb_vd=emb_vd,
      v2_v=v2_v,
      err_vm=err_vm,
      vis_vm=visible_vm,
      fallback_m=fallback_m,
      k=k,
      k_max=k_max,
  )
  return batching.map_even(one, emb_qd, batch_size)


def oracle_gamma(quality_qm, label_mask_qm) -> Array:
  """``[q, m]`` ``1 - quality``; 1.0 where a label is missing.

  A missing label is never preferred to a labelled LLM with error < 1 (on
  equal scores the lower index wins, as in ``routing.plugin_route``).
  """
  return jnp.where(label_mask_qm, 1.0 - quality_qm, 1.0)
