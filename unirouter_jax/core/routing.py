"""The plug-in routing rule (method.md 1-2) and its cost-weight grid.

``plugin_route`` picks ``argmin_{h in pool} gamma(x, h) + lambda * c(h)``. Non-pool
LLMs are masked to ``+inf``; ``jnp.argmin`` returns the first minimum, so ties
go to the lowest index, and a row where every entry is masked (an empty pool)
returns index 0 **[project choice]**: the result stays a valid, finite index
and callers mask such rows out of their metrics.

``lambda_grid`` is in units of normalised cost;
``unirouter_jax.core.curves.scale_lambdas`` (the module that owns the cost
axis) converts it to raw cost units for a pool.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array


def uniroute_gamma(phi_qk, psi_km) -> Array:
  """``[q, m]`` estimated errors ``Phi(x)^T Psi(h)`` (full f32 precision)."""
  return jnp.matmul(phi_qk, psi_km, precision=lax.Precision.HIGHEST)


def plugin_route(gamma_qm, cost_m_or_qm, lam, pool_mask_m) -> Array:
  """``[q]`` int32 choice ``argmin_{m in pool} gamma_qm + lam * cost``.

  Args:
    gamma_qm: ``[q, m]`` estimated errors.
    cost_m_or_qm: ``[m]`` per-LLM or ``[q, m]`` per-prompt costs.
    lam: scalar cost weight (>= 0), may be traced.
    pool_mask_m: ``[m]`` bool, the candidate LLMs.

  Returns:
    ``[q]`` chosen LLM; lowest index on ties, 0 for an empty pool.
  """
  cost = jnp.asarray(cost_m_or_qm)
  cost_qm = cost[None, :] if cost.ndim == 1 else cost
  score_qm = gamma_qm + lam * cost_qm
  score_qm = jnp.where(pool_mask_m[None, :], score_qm, jnp.inf)
  return jnp.argmin(score_qm, axis=-1).astype(jnp.int32)


def route_grid(gamma_qm, cost_m_or_qm, lam_l, pool_mask_m) -> Array:
  """``[l, q]`` ``plugin_route`` for every cost weight in ``lam_l``."""
  return jax.vmap(plugin_route, in_axes=(None, None, 0, None))(
      gamma_qm, cost_m_or_qm, lam_l, pool_mask_m
  )


def lambda_grid(num: int = 200, lo: float = 1e-4, hi: float = 1e4) -> Array:
  """``[num]`` cost weights: 0 followed by ``num - 1`` geometric ones.

  In units of normalised cost (see ``curves.scale_lambdas``). Host function.

  Raises:
    ValueError: naming the argument, unless ``num >= 2`` and
      ``0 < lo < hi`` (finite).
  """
  if not isinstance(num, (int, np.integer)) or num < 2:
    raise ValueError(f'num: expected an int >= 2, got {num!r}.')
  if not (np.isfinite(lo) and lo > 0):
    raise ValueError(f'lo: expected a finite value > 0, got {lo!r}.')
  if not (np.isfinite(hi) and hi > lo):
    raise ValueError(f'hi: expected a finite value > lo={lo!r}, got {hi!r}.')
  geo = np.geomspace(lo, hi, num - 1)
  return jnp.asarray(np.concatenate([[0.0], geo]), dtype=float)
