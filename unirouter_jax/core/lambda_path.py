"""The plug-in rule at every cost weight at once (method.md 2.1, 3).

For one prompt, LLM ``j`` beats LLM ``i`` under ``argmin_m gamma_m + lam c_m``
(``c_m`` the cost the rule charges) exactly when
``lam (c_j - c_i) < gamma_i - gamma_j``: for a dearer ``i`` when ``lam`` is
above ``t_ij = (gamma_i - gamma_j) / (c_j - c_i)``, for a cheaper ``i`` when
it is below ``t_ij``; against an equally priced ``i`` never or always
(lower error, then lower index, wins). So ``j`` is chosen on one interval of
cost weights, ``(max over dearer i of t_ij, min over cheaper i of t_ij]``,
empty unless ``j`` is a vertex of the prompt's lower convex hull of
``(c_m, gamma_m)``. The realised cost and quality of the routed prompts at
every ``lam`` of a grid are then sums of interval indicators: a difference
array over the grid and a cumulative sum. That is ``O(q m^2)`` elementwise
work and ``O(q m)`` memory, against ``O(l q m)`` for routing at every
``lam`` (``curves.deferral_points(routing.route_grid(...))``, the direct
form, which this equals).

It is also the more exact of the two: the direct form compares float32
scores ``gamma + lam c``, which at large ``lam`` round away error
differences (at ``lam c ~ 300`` the spacing of float32 is ``3e-5``); here
the only rounding is in ``t_ij``, so the two differ on a prompt only where
a grid ``lam`` is within float32 rounding of a breakpoint. A breakpoint hit
exactly (it happens: with 0/1 errors the breakpoint between the cheapest
and the dearest LLM is ``lam = 1`` in normalised units) goes to the lowest
index among the tied LLMs, as in ``routing.plugin_route``; so does
``lam = 0``, where the direct rule is applied. ``lam`` must be >= 0, in any
order, and ``gamma`` finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from unirouter_jax.core import routing

Array = jax.Array


def winning_intervals(gamma_qm, rule_cost_m, pool_m):
  """Each LLM's interval of cost weights where the rule picks it.

  At a breakpoint hit exactly the LLMs tied there compare by index (the
  lowest wins, as ``routing.plugin_route``), so each end of an interval is
  open or closed.

  Args:
    gamma_qm: ``[q, m]`` estimated errors.
    rule_cost_m: ``[m]`` cost each LLM is charged.
    pool_m: ``[m]`` bool, the candidate LLMs.

  Returns:
    ``(lo_qm, hi_qm, lo_closed_qm, hi_closed_qm, wins_qm)``: for ``lam > 0``
    LLM ``m`` is chosen for prompt ``q`` exactly on the interval from ``lo``
    (``>= 0``) to ``hi`` (may be inf), each end included where ``closed``,
    if ``wins_qm``; never where not.
  """
  gamma_qm = jnp.asarray(gamma_qm)
  q, m = gamma_qm.shape
  cost_m = jnp.asarray(rule_cost_m, gamma_qm.dtype)
  pool_m = jnp.asarray(pool_m, bool)
  idx_m = jnp.arange(m)

  def against(i, carry):
    lo_qm, hi_qm, lo_closed_qm, hi_closed_qm, beaten_qm = carry
    g_q1 = gamma_qm[:, i][:, None]
    den_m = cost_m - cost_m[i]
    t_qm = (g_q1 - gamma_qm) / jnp.where(den_m == 0, 1.0, den_m)
    first_m = idx_m < i  # wins a tie with i
    dearer_m = pool_m[i] & (den_m < 0)  # i is dearer: beaten above t
    lo_closed_qm = jnp.where(
        dearer_m & (t_qm > lo_qm),
        first_m,
        jnp.where(dearer_m & (t_qm == lo_qm), lo_closed_qm & first_m,
                  lo_closed_qm),
    )  # fmt: skip
    lo_qm = jnp.where(dearer_m, jnp.maximum(lo_qm, t_qm), lo_qm)
    cheaper_m = pool_m[i] & (den_m > 0)  # i is cheaper: beaten below t
    hi_closed_qm = jnp.where(
        cheaper_m & (t_qm < hi_qm),
        first_m,
        jnp.where(cheaper_m & (t_qm == hi_qm), hi_closed_qm & first_m,
                  hi_closed_qm),
    )  # fmt: skip
    hi_qm = jnp.where(cheaper_m, jnp.minimum(hi_qm, t_qm), hi_qm)
    tie_lost_qm = (g_q1 < gamma_qm) | ((g_q1 == gamma_qm) & ~first_m)
    beaten_qm |= pool_m[i] & (den_m == 0) & (idx_m != i) & tie_lost_qm
    return lo_qm, hi_qm, lo_closed_qm, hi_closed_qm, beaten_qm

  init = (
      jnp.zeros((q, m), gamma_qm.dtype),
      jnp.full((q, m), jnp.inf, gamma_qm.dtype),
      jnp.zeros((q, m), bool),
      jnp.ones((q, m), bool),
      jnp.zeros((q, m), bool),
  )
  lo_qm, hi_qm, lo_closed_qm, hi_closed_qm, beaten_qm = lax.fori_loop(
      0, m, against, init
  )
  point_qm = (lo_qm == hi_qm) & lo_closed_qm & hi_closed_qm
  nonempty_qm = (lo_qm < hi_qm) | point_qm
  wins_qm = pool_m[None, :] & ~beaten_qm & nonempty_qm
  return lo_qm, hi_qm, lo_closed_qm, hi_closed_qm, wins_qm


def _split_hi_lo(x_n2):
  """``x = hi + lo`` exactly, ``hi`` an integer multiple (``|k| <= 2^11``) of
  a power of two per column, ``|lo|`` at most half that power.

  Sums of the ``hi`` parts are exact up to 2^13 terms and running totals
  of as many, so only the small ``lo`` parts round: a difference array of
  large costs that cancel down to a small total keeps float32 precision
  relative to that total (a plain one loses a factor of the cost range).
  """
  _, exp_2 = jnp.frexp(jnp.max(jnp.abs(x_n2), axis=0))
  unit_2 = jnp.ldexp(jnp.ones((), x_n2.dtype), exp_2 - 11)
  hi_n2 = jnp.round(x_n2 / unit_2) * unit_2
  return hi_n2, x_n2 - hi_n2


def rule_path_points(
    gamma_qm, rule_cost_m, lam_l, pool_m, quality_qm, cost_qm, weight_q
):
  """Weighted mean realised cost and quality of the rule at each ``lam``.

  Equals ``curves.deferral_points(routing.route_grid(gamma_qm, rule_cost_m,
  lam_l, pool_m), quality_qm, cost_qm, weight_q)`` up to the float ties of
  the module docstring.

  Args:
    gamma_qm: ``[q, m]`` estimated errors (finite).
    rule_cost_m: ``[m]`` cost each LLM is charged by the rule.
    lam_l: ``[l]`` raw cost weights, >= 0, any order.
    pool_m: ``[m]`` bool, the candidate LLMs.
    quality_qm: ``[q, m]`` quality labels.
    cost_qm: ``[q, m]`` realised per-prompt costs.
    weight_q: ``[q]`` prompt weights.

  Returns:
    ``(cost_l, quality_l)``, both ``[l]`` (0 when every weight is 0); with
    an empty pool every prompt goes to LLM 0, as ``plugin_route`` does.
  """
  gamma_qm, pool_m = jnp.asarray(gamma_qm), jnp.asarray(pool_m, bool)
  lam_l = jnp.asarray(lam_l)
  dtype = jnp.result_type(gamma_qm.dtype, jnp.float32)
  num_l = lam_l.shape[0]
  order_l = jnp.argsort(lam_l)
  lam_sorted_l = lam_l[order_l].astype(dtype)
  w_q = jnp.asarray(weight_q).astype(dtype)
  # The two quantities carried through: realised cost and quality.
  val_qm2 = jnp.stack(
      [jnp.asarray(cost_qm), jnp.asarray(quality_qm)], axis=-1
  ).astype(dtype)
  # lam = 0 (and an empty pool): the direct rule, lowest index on ties.
  num_zero = jnp.sum(lam_sorted_l <= 0)
  zero_q = routing.plugin_route(gamma_qm, rule_cost_m, 0.0, pool_m)
  zero_2 = jnp.matmul(
      w_q,
      jnp.take_along_axis(val_qm2, zero_q[:, None, None], axis=1)[:, 0],
      precision=lax.Precision.HIGHEST,
  )
  lo_qm, hi_qm, lo_closed_qm, hi_closed_qm, wins_qm = winning_intervals(
      gamma_qm, rule_cost_m, pool_m
  )
  # LLM m holds grid positions [start, end) (lam from lo to hi). The sums
  # over prompts are a difference array (+ at start, - at end; LLMs that
  # never win go to the spare last slot), then a cumulative sum.
  # #{lam < x} is #{lam <= the float below x}.
  below = lambda x: jnp.nextafter(x, jnp.asarray(-jnp.inf, x.dtype))
  start_qm = jnp.where(lo_closed_qm, below(lo_qm), lo_qm)
  end_qm = jnp.where(hi_closed_qm, hi_qm, below(hi_qm))
  pos_2qm = jnp.searchsorted(
      lam_sorted_l,
      jnp.stack([start_qm, end_qm]).astype(dtype),
      side='right',
      method='scan',
  )
  pos_2qm = jnp.where(wins_qm[None], pos_2qm, num_l)
  add_qm2 = (val_qm2 * w_q[:, None, None]).reshape(-1, 2)
  parts_n4 = jnp.concatenate(_split_hi_lo(add_qm2), axis=1)  # hi, lo
  diff_l4 = jax.ops.segment_sum(
      jnp.concatenate([parts_n4, -parts_n4]),
      pos_2qm.reshape(-1),
      num_segments=num_l + 1,
  )
  sum_l4 = jnp.cumsum(diff_l4[:num_l], axis=0)
  sum_l2 = sum_l4[:, :2] + sum_l4[:, 2:]
  direct_l = (jnp.arange(num_l) < num_zero) | ~jnp.any(pool_m)
  sum_l2 = jnp.where(direct_l[:, None], zero_2[None, :], sum_l2)
  total = jnp.sum(w_q)
  mean_l2 = jnp.where(total > 0, sum_l2 / jnp.where(total > 0, total, 1), 0.0)
  out_l2 = jnp.zeros_like(mean_l2).at[order_l].set(mean_l2)
  return out_l2[:, 0], out_l2[:, 1]
