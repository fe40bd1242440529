"""Scoring a deployed :class:`~unirouter_jax.core.structs.Router` on held-out data.

The same deferral curve and metrics as the protocol (method.md section 3):
the router's estimated errors, the plug-in rule over the lambda grid among
the router's LLMs, realised quality and cost of the labelled prompts, the
upper concave envelope on range-normalised cost, Area / Area(50%) / QNC.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from unirouter_jax.core import curves, routing
from unirouter_jax.core.structs import CurveMetrics, Router
from unirouter_jax.deploy.router import route


def _columns(router: Router, names: Sequence[str] | None, m: int) -> np.ndarray:
  """Indices of the router's LLMs among the label columns."""
  if names is None:
    if m != router.num_llms:
      raise ValueError(
          f"quality_qm: expected {router.num_llms} columns (the router's "
          f'LLMs) or llm_names, got {m} columns.'
      )
    return np.arange(m)
  names = list(names)
  if len(names) != m:
    raise ValueError(f'llm_names: expected {m} names, got {len(names)}.')
  missing = [x for x in router.llm_names if x not in names]
  if missing:
    raise ValueError(f"llm_names: no labels for the router's LLMs {missing}.")
  return np.asarray([names.index(x) for x in router.llm_names])


def deferral_curve(
    router: Router,
    emb_qd,
    quality_qm,
    cost_qm,
    label_mask_qm=None,
    *,
    llm_names: Sequence[str] | None = None,
    num_lambdas: int = 200,
    grid_points: int = 101,
) -> CurveMetrics:
  """The router's deferral curve on labelled held-out prompts.

  Args:
    router: a fitted router.
    emb_qd: ``[q, d]`` embeddings of the held-out prompts.
    quality_qm: ``[q, m]`` true quality labels in [0, 1].
    cost_qm: ``[q, m]`` (or ``[m]``) realised costs.
    label_mask_qm: optional ``[q, m]`` bool, True where labelled.
    llm_names: names of the ``m`` label columns; the router's LLMs are
      picked from them by name (default: columns are the router's LLMs in
      order).
    num_lambdas: size of the cost-weight grid.
    grid_points: size of the normalised-cost grid of ``quality_g``.

  Returns:
    :class:`CurveMetrics` of the router among its own LLMs.
  """
  q = np.asarray(quality_qm, np.float32)
  if q.ndim != 2:
    raise ValueError(f'quality_qm: expected [q, m], got shape {q.shape}.')
  cols = _columns(router, llm_names, q.shape[1])
  cost = np.broadcast_to(np.asarray(cost_qm, np.float32), q.shape)
  mask = (
      np.ones(q.shape, bool)
      if label_mask_qm is None
      else np.asarray(label_mask_qm, bool)
  )
  q, cost, mask = q[:, cols], cost[:, cols], mask[:, cols]
  gamma_qm = route(router, emb_qd, lam=0.0).gamma_qm
  pool_m = jnp.ones((router.num_llms,), bool)
  ev = curves.eval_set(
      jnp.asarray(q), jnp.asarray(mask), jnp.asarray(cost), pool_m
  )
  return curves.curve_from_gamma(
      gamma_qm,
      pool_m,
      jnp.asarray(router.cost_m),
      ev,
      routing.lambda_grid(num_lambdas),
      jnp.linspace(0.0, 1.0, grid_points),
  )
