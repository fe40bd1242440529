"""The cost axis and deferral curves (method.md section 3), in JAX.

This is the one module that knows what the cost axis is: how costs are
normalised (``pool_cost_range``, ``normalise_cost``, ``raw_cost``), how cost
weights are scaled to it (``scale_lambdas``, ``lambda_cap``), and how a
routing rule becomes points, an envelope and metrics (``rule_points``,
``curve_inputs``, ``curve_from_points``, ``curve_from_gamma``). Every other
module calls these; a new cost normalisation goes here and nowhere else.

A router swept over cost weights gives points ``(cost, quality)``. The curve
is their upper concave envelope (mixing two routers at random reaches any
point on the segment between them), flat to the right of its highest point.
Every curve built by ``curve_inputs`` includes the cheapest pool LLM's point
at ``x = 0`` (``pool_summary``), so it starts at its leftmost achievable
point; ``curve_metrics`` on raw points (where nothing sits at ``x <= 0``)
still extends flat to the left. The envelope is computed exactly
with a monotone-chain hull (``lax.scan`` with a popping ``lax.while_loop``),
so it is a piecewise-linear function given by its vertices, and

* ``quality_g`` is that function on the common normalised-cost grid;
* ``area`` / ``area50`` are its exact integrals over ``[0, 1]`` /
  ``[0, 0.5]`` (trapezoids between the vertices clipped to the interval,
  which is exact for a piecewise-linear function);
* ``qnc`` is the smallest raw cost where it reaches the best single LLM's
  quality, divided by that LLM's cost (``inf`` if never reached);
* ``peak`` is its maximum.

Cost axis **[project choice]**: ``x = (cost - c_min) / (c_max - c_min)``
with ``c_min``/``c_max`` the mean test costs of the cheapest/dearest pool
LLM; when ``c_max == c_min`` every ``x`` is 0.

Everything here is pure and vmappable over trials.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from unirouter_jax.core import lambda_path
from unirouter_jax.core.structs import CurveMetrics, EvalSet

Array = jax.Array


def _weighted_mean_q(v_qm, weight_q):
  """``[m]`` weighted mean over prompts; 0 when all weights are 0."""
  w_q = weight_q.astype(v_qm.dtype)
  total = jnp.sum(w_q)
  s_m = jnp.matmul(w_q, v_qm, precision=lax.Precision.HIGHEST)
  return jnp.where(total > 0, s_m / jnp.where(total > 0, total, 1), 0.0)


def eval_set(quality_qm, label_mask_qm, cost_qm, pool_m) -> EvalSet:
  """The :class:`EvalSet` of prompts scored among the LLMs ``pool_m``.

  **[project choice] missing labels**, one rule for every router, the
  single LLMs and the Oracle: a prompt counts only if **every** pool LLM is
  labelled on it. Routers never see which labels exist (nothing here feeds
  back into ``gamma``), and every choice on a counted prompt has a label by
  construction. Prompts left out are reported (``weight_q.sum()``).

  Args:
    quality_qm: ``[q, m]`` true quality (any value where not labelled).
    label_mask_qm: ``[q, m]`` True where labelled.
    cost_qm: ``[q, m]`` realised costs.
    pool_m: ``[m]`` the LLMs routed among.
  """
  mask_qm = jnp.asarray(label_mask_qm, bool)
  quality_qm = jnp.where(mask_qm, quality_qm, 0.0)
  return EvalSet(
      quality_qm=quality_qm,
      label_mask_qm=mask_qm,
      cost_qm=jnp.asarray(cost_qm, quality_qm.dtype),
      weight_q=scored_prompts(mask_qm, pool_m).astype(quality_qm.dtype),
  )


def scored_prompts(label_mask_qm, pool_m) -> Array:
  """``[q]`` bool: the prompts labelled for every pool LLM (``eval_set``)."""
  pool_m = jnp.asarray(pool_m, bool)
  mask_qm = jnp.asarray(label_mask_qm, bool)
  return (mask_qm | ~pool_m[None, :]).all(1) & pool_m.any()


def pool_extremes(cost_m, pool_mask_m):
  """``(lo, hi)``: cheapest and dearest pool cost (``+-inf`` if empty)."""
  hi = jnp.max(jnp.where(pool_mask_m, cost_m, -jnp.inf))
  lo = jnp.min(jnp.where(pool_mask_m, cost_m, jnp.inf))
  return lo, hi


def pool_cost_range(cost_qm, weight_q, pool_mask_m):
  """``(c_min, c_max)``: mean test cost of the cheapest/dearest pool LLM.

  Both are 0 for an empty pool.
  """
  mean_m = _weighted_mean_q(cost_qm, weight_q)
  lo, hi = pool_extremes(mean_m, pool_mask_m)
  any_pool = jnp.any(pool_mask_m)
  return jnp.where(any_pool, lo, 0.0), jnp.where(any_pool, hi, 0.0)


def normalise_cost(cost_l, c_min, c_max):
  """``(cost - c_min) / (c_max - c_min)``; 0 everywhere if the range is 0."""
  span = c_max - c_min
  ok = span > 0
  return jnp.where(ok, (cost_l - c_min) / jnp.where(ok, span, 1.0), 0.0)


def raw_cost(x, c_min, c_max):
  """The inverse of ``normalise_cost``: ``c_min + x (c_max - c_min)``.

  Works on NumPy and JAX arrays alike (host statistics use it too).
  """
  return c_min + x * (c_max - c_min)


def scale_lambdas(lam_l, cost_m, pool_mask_m) -> Array:
  """``[l]`` cost weights in normalised units -> raw cost units.

  ``lam_l / (max pool cost - min pool cost)``, so the same
  ``routing.lambda_grid`` spans the trade-off whether costs are USD per
  query or parameter counts. When the range is zero (one pool LLM, equal
  costs, empty pool) the cost term cannot change the choice and ``lam_l``
  is returned unscaled.
  """
  lo, hi = pool_extremes(cost_m, pool_mask_m)
  span = hi - lo
  ok = jnp.isfinite(span) & (span > 0)
  return lam_l / jnp.where(ok, span, 1.0)


def lambda_cap(cost_m, pool_m) -> Array:
  """A raw cost weight beyond which every prompt goes to the cheapest LLM.

  Errors lie in [0, 1], so once ``lam`` times the smallest positive cost gap
  between pool LLMs exceeds 1 the cheapest LLM always wins (4x margin).
  """
  c = jnp.where(pool_m, cost_m, jnp.nan)
  gap = jnp.abs(c[:, None] - c[None, :])
  gap = jnp.where(jnp.isfinite(gap) & (gap > 0), gap, jnp.inf)
  return 4.0 / jnp.minimum(jnp.min(gap), 1e30)


@jax.jit
def deferral_points(choice_lq, quality_qm, cost_qm, weight_q):
  """Weighted mean realised cost and quality of routed choices.

  Args:
    choice_lq: ``[l, q]`` chosen LLM per cost weight and prompt.
    quality_qm: ``[q, m]`` quality labels.
    cost_qm: ``[q, m]`` realised per-prompt costs.
    weight_q: ``[q]`` prompt weights (0/1 mask of the test prompts).

  Returns:
    ``(cost_l, quality_l)``, both ``[l]`` (0 when every weight is 0).
  """

  def one(choice_q):
    idx_q1 = choice_q[:, None]
    c_q1 = jnp.take_along_axis(cost_qm, idx_q1, axis=1)
    y_q1 = jnp.take_along_axis(quality_qm, idx_q1, axis=1)
    return _weighted_mean_q(jnp.concatenate([c_q1, y_q1], axis=1), weight_q)

  cy_l2 = jax.vmap(one)(choice_lq)
  return cy_l2[:, 0], cy_l2[:, 1]


def _upper_hull(x_p, y_p, mask_p):
  """Monotone chain over the masked points, left to right.

  Points are sorted by ``x`` (ties: larger ``y`` first); only the first point
  at each ``x`` and the points up to the leftmost highest point take part
  (the curve is flat right of it). Returns ``(order_p, stack_p, size)``:
  the sort permutation, the hull's positions in sorted order (first
  ``size`` entries valid) and the number of hull vertices (0 if no point).
  """
  x_p, y_p = jnp.asarray(x_p), jnp.asarray(y_p)
  mask_p = jnp.asarray(mask_p, bool)
  p = x_p.shape[0]
  order_p = jnp.lexsort((-y_p, x_p, ~mask_p))
  xs_p, ys_p, ms_p = x_p[order_p], y_p[order_p], mask_p[order_p]
  first_p = jnp.concatenate([jnp.ones((1,), bool), xs_p[1:] != xs_p[:-1]])
  top = jnp.argmax(jnp.where(ms_p, ys_p, -jnp.inf))
  pos_p = jnp.arange(p)
  active_p = ms_p & first_p & (pos_p <= top)

  def cross(a, b, j):
    # > = 0: b is on or below the segment from a to j -> not a vertex.
    return (xs_p[b] - xs_p[a]) * (ys_p[j] - ys_p[a]) - (ys_p[b] - ys_p[a]) * (
        xs_p[j] - xs_p[a]
    )

  def step(carry, j):
    stack_p, size = carry

    def pop_cond(size):
      a = stack_p[jnp.maximum(size - 2, 0)]
      b = stack_p[jnp.maximum(size - 1, 0)]
      return active_p[j] & (size >= 2) & (cross(a, b, j) >= 0)

    size = lax.while_loop(pop_cond, lambda s: s - 1, size)
    stack_p = jnp.where(active_p[j], stack_p.at[size].set(j), stack_p)
    return (stack_p, size + active_p[j].astype(size.dtype)), None

  init = (jnp.zeros((p,), jnp.int32), jnp.array(0, jnp.int32))
  (stack_p, size), _ = lax.scan(step, init, pos_p.astype(jnp.int32))
  return order_p, stack_p, size


@jax.jit
def hull_vertices(x_p, y_p, mask_p) -> Array:
  """``[p]`` bool: the points that are vertices of the envelope.

  The upper concave envelope, flat right of its (leftmost) highest point:
  from the leftmost point (highest ``y`` there) up to that highest point.
  Among exact duplicates only the lowest index is a vertex; collinear points
  are not vertices.
  """
  p = x_p.shape[0]
  order_p, stack_p, size = _upper_hull(x_p, y_p, mask_p)
  slot_p = jnp.where(jnp.arange(p) < size, stack_p, p)
  on_sorted_p = jnp.zeros((p,), bool).at[slot_p].set(True, mode='drop')
  return jnp.zeros((p,), bool).at[order_p].set(on_sorted_p)


@jax.jit
def _envelope_knots(x_p, y_p, mask_p):
  """``(hx_p, hy_p)``: hull vertices sorted by ``x``, padded by repeating the
  last one (so ``jnp.interp`` is the envelope, flat on both sides). All
  zeros when no point is masked in."""
  x_p, y_p = jnp.asarray(x_p), jnp.asarray(y_p)
  p = x_p.shape[0]
  order_p, stack_p, size = _upper_hull(x_p, y_p, mask_p)
  last = jnp.maximum(size - 1, 0)
  idx_p = jnp.where(jnp.arange(p) < size, stack_p, stack_p[last])
  hx_p, hy_p = x_p[order_p][idx_p], y_p[order_p][idx_p]
  return jnp.where(size > 0, hx_p, 0.0), jnp.where(size > 0, hy_p, 0.0)


@jax.jit
def upper_envelope(x_p, y_p, mask_p, grid_g) -> Array:
  """``[g]`` the envelope of the masked points on ``grid_g``.

  Upper concave envelope, flat right of its highest point and left of its
  leftmost point; 0 everywhere if no point is masked in.
  """
  hx_p, hy_p = _envelope_knots(x_p, y_p, mask_p)
  return jnp.interp(grid_g, hx_p, hy_p)


def _integral(hx_p, hy_p, a, b):
  """Exact integral over ``[a, b]`` of the piecewise-linear envelope."""
  t_r = jnp.concatenate([
      jnp.full((1,), a, hx_p.dtype),
      jnp.clip(hx_p, a, b),
      jnp.full((1,), b, hx_p.dtype),
  ])
  f_r = jnp.interp(t_r, hx_p, hy_p)
  return jnp.sum(0.5 * (f_r[1:] + f_r[:-1]) * (t_r[1:] - t_r[:-1]))


@jax.jit
def curve_metrics(
    x_p,
    y_p,
    mask_p,
    *,
    best_quality,
    best_cost,
    c_min,
    c_max,
    grid_g=None,
    atol=1e-6,
) -> CurveMetrics:
  """Metrics of one deferral curve (normalised cost ``x_p``).

  Args:
    x_p: ``[p]`` normalised costs of the curve's points.
    y_p: ``[p]`` qualities.
    mask_p: ``[p]`` bool, the points to use.
    best_quality: test quality of the best single pool LLM.
    best_cost: its mean test cost (raw units).
    c_min: raw cost at ``x = 0``.
    c_max: raw cost at ``x = 1``.
    grid_g: ``[g]`` grid for ``quality_g``; default 101 points on [0, 1].
    atol: the envelope reaches ``best_quality`` where it is ``>=
      best_quality - atol`` (absorbs rounding of equal means).

  Returns:
    ``CurveMetrics``. QNC: the crossing point of the envelope; when its
    leftmost point already reaches the target, the curve's start
    ``min(0, leftmost x)`` (it is flat there). A ``best_cost`` of 0 gives
    QNC 1 when reached.
  """
  if grid_g is None:
    grid_g = jnp.linspace(0.0, 1.0, 101, dtype=jnp.asarray(y_p).dtype)
  hx_p, hy_p = _envelope_knots(x_p, y_p, mask_p)
  quality_g = jnp.interp(grid_g, hx_p, hy_p)
  area = _integral(hx_p, hy_p, 0.0, 1.0)
  area50 = _integral(hx_p, hy_p, 0.0, 0.5)
  peak = hy_p[-1]
  target = best_quality - atol
  # Crossing on the segment [i, i + 1] with hy[i] < target <= hy[i + 1].
  y0_r, y1_r = hy_p[:-1], hy_p[1:]
  x0_r, x1_r = hx_p[:-1], hx_p[1:]
  hit_r = (y0_r < target) & (target <= y1_r)
  frac_r = (target - y0_r) / jnp.where(hit_r, y1_r - y0_r, 1.0)
  cross_r = jnp.where(hit_r, x0_r + frac_r * (x1_r - x0_r), jnp.inf)
  x_reach = jnp.where(
      hy_p[0] >= target,
      jnp.minimum(hx_p[0], 0.0),
      jnp.min(cross_r, initial=jnp.inf),
  )
  reached = jnp.isfinite(x_reach) & jnp.any(mask_p)
  raw = c_min + jnp.where(reached, x_reach, 0.0) * (c_max - c_min)
  ratio = jnp.where(
      best_cost > 0, raw / jnp.where(best_cost > 0, best_cost, 1), 1.0
  )
  qnc = jnp.where(reached, ratio, jnp.inf)
  return CurveMetrics(
      quality_g=quality_g,
      area=area,
      area50=area50,
      qnc=qnc,
      peak=peak,
      knot_x_p=hx_p,
      knot_y_p=hy_p,
  )


def single_llm_points(quality_qm, cost_qm, weight_q, pool_mask_m):
  """``(cost_m, quality_m)``: each LLM alone (mean test cost and quality).

  Entries outside the pool are 0; use ``pool_mask_m`` as the points' mask.
  """
  cost_m = _weighted_mean_q(cost_qm, weight_q)
  quality_m = _weighted_mean_q(quality_qm, weight_q)
  return (
      jnp.where(pool_mask_m, cost_m, 0.0),
      jnp.where(pool_mask_m, quality_m, 0.0),
  )


def _best_of(cost_m, quality_m, pool_mask_m):
  """``(quality, cost)`` of the pool LLM of highest quality (ties: cheaper,
  then lower index)."""
  q_max = jnp.max(jnp.where(pool_mask_m, quality_m, -jnp.inf))
  tie_m = pool_mask_m & (quality_m == q_max)
  best = jnp.argmin(jnp.where(tie_m, cost_m, jnp.inf))
  return quality_m[best], cost_m[best]


def best_llm(quality_qm, cost_qm, weight_q, pool_mask_m):
  """``(best_quality, best_cost)`` of the pool LLM of highest mean quality.

  Ties go to the cheaper LLM, then the lower index; an empty pool gives
  ``(0, 0)``.
  """
  cost_m, quality_m = single_llm_points(
      quality_qm, cost_qm, weight_q, pool_mask_m
  )
  return _best_of(cost_m, quality_m, pool_mask_m)


def pool_summary(ev: EvalSet, pool_m) -> dict[str, Array]:
  """Everything a curve needs to know of the pool's single LLMs, once.

  Returns a dict of ``cost_m``, ``quality_m`` (each LLM alone, 0 outside the
  pool), ``c_min``, ``c_max`` (the cost axis), ``best_quality``,
  ``best_cost`` (QNC's target) and ``cheap_cost``, ``cheap_quality`` (the
  cheapest LLM, ties to the higher quality: every curve's first point).
  """
  cost_m, quality_m = single_llm_points(
      ev.quality_qm, ev.cost_qm, ev.weight_q, pool_m
  )
  lo, hi = pool_extremes(cost_m, pool_m)
  any_pool = jnp.any(pool_m)
  best_q, best_c = _best_of(cost_m, quality_m, pool_m)
  tie_m = pool_m & (cost_m == lo)
  cheap = jnp.argmax(jnp.where(tie_m, quality_m, -jnp.inf))
  return dict(
      cost_m=cost_m,
      quality_m=quality_m,
      c_min=jnp.where(any_pool, lo, 0.0),
      c_max=jnp.where(any_pool, hi, 0.0),
      best_quality=best_q,
      best_cost=best_c,
      cheap_cost=cost_m[cheap],
      cheap_quality=quality_m[cheap],
  )


def rule_points(gamma_qm, pool_m, rule_cost_m, ev: EvalSet, lam_l):
  """The plug-in rule swept over ``lam_l``: ``(cost_l, quality_l)``.

  ``lam_l`` is in normalised units (``scale_lambdas``); ``rule_cost_m`` is
  what the rule charges (each LLM's mean cost on the probe prompts). The
  rule sees ``gamma`` and costs only, never the labels of ``ev`` or their
  mask. Computed from each LLM's winning interval of cost weights
  (``lambda_path``, ``O(q m^2)``, no ``[l, q, m]`` scores); it equals
  ``deferral_points(routing.route_grid(...))`` except where float32 scores
  ``gamma + lam c`` round two LLMs together.
  """
  lam_l = scale_lambdas(lam_l, rule_cost_m, pool_m)
  return lambda_path.rule_path_points(
      gamma_qm, rule_cost_m, lam_l, pool_m, ev.quality_qm, ev.cost_qm,
      ev.weight_q,
  )  # fmt: skip


def curve_inputs(cost_p, quality_p, mask_p, pool_m, ev: EvalSet):
  """Normalised points plus the cheapest LLM's, and the scalars of
  ``curve_metrics``, as a dict; ``p`` grows by one.

  **[project choice]** every curve includes the cheapest pool LLM's point
  (``x = 0``): routing everything to it, or mixing with it at random, is
  open to every router, so the curve starts at ``x = 0`` and is never
  extended flat to the left of a router's own cheapest point (which would
  give it Area for free).
  """
  pool = pool_summary(ev, pool_m)
  quality_p = jnp.asarray(quality_p)
  mask_p = jnp.broadcast_to(mask_p, quality_p.shape)
  cost_p = jnp.concatenate([jnp.asarray(cost_p), pool['cheap_cost'][None]])
  cheap_q = pool['cheap_quality'][None].astype(quality_p.dtype)
  return dict(
      x_p=normalise_cost(cost_p, pool['c_min'], pool['c_max']),
      y_p=jnp.concatenate([quality_p, cheap_q]),
      mask_p=jnp.concatenate([mask_p, jnp.any(pool_m)[None]]),
      best_quality=pool['best_quality'],
      best_cost=pool['best_cost'],
      c_min=pool['c_min'],
      c_max=pool['c_max'],
  )


def curve_from_points(cost_p, quality_p, mask_p, pool_m, ev: EvalSet, grid_g):
  """Normalises raw curve points and computes the metrics of method.md 3."""
  kw = curve_inputs(cost_p, quality_p, mask_p, pool_m, ev)
  return curve_metrics(grid_g=grid_g, **kw)


def curve_from_gamma(gamma_qm, pool_m, rule_cost_m, ev: EvalSet, lam_l, grid_g):
  """Routes with the plug-in rule over ``lam_l`` and scores the curve."""
  cost_l, quality_l = rule_points(gamma_qm, pool_m, rule_cost_m, ev, lam_l)
  mask_l = jnp.ones(cost_l.shape, bool)
  return curve_from_points(cost_l, quality_l, mask_l, pool_m, ev, grid_g)
