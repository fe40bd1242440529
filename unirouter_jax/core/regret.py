"""The routing regret of ``psi`` uncertainty, and how much more labels cut it.

The value of information behind the probe strategies and the stopping
estimate (``docs/probing.md``); the beliefs they start from are
:mod:`unirouter_jax.core.probe`. Axes: ``k`` clusters (padded), ``m``
LLMs, ``l`` cost weights, ``h`` look-ahead horizons, ``s`` outcomes
(labels wrong among ``n``).

* :func:`routing_regret`: the expected loss of the plug-in routing decision
  due to ``psi`` uncertainty (the stopping estimate), in units of Area
  when the cost weights are weighted by :func:`area_weights`.
* :func:`knowledge_gradient`: the exact expected fall of that loss after
  ``n`` more labels of a cluster (beta-binomial predictive);
  :func:`remaining_gain` the fall if every probe prompt left were labelled
  (the stopping rule's quantity); :func:`value_index` (KG* per label) the
  active strategy's index.

**The regret.** In cluster ``k`` at cost weight ``lam``, LLM ``m`` wins when
its error ``p`` is below ``t = min_{h != m} (mu_h + lam c_h) - lam c_m``
(its rivals held at their posterior means ``mu``). Deciding on the
posterior mean instead of the true ``p`` loses, in expectation, the value of
perfect information ``E[(t - p)^+] - (t - mu)^+`` (exact for a Beta
posterior, by the incomplete beta function). ``routing_regret`` sums it
over clusters (weighted by probe mass) and averages over cost weights;
with :func:`area_weights` (each cost weight's share of the normalised cost
axis under the current means) the average is an expected Area loss. For
a fixed prior, rival threshold and weights it is a supermartingale: the
expected regret after any further label, drawn from the posterior
predictive, is at most the current one (tower property plus Jensen), and
at fixed posterior means it decreases in every count.
With the ability offset (re-fitted as labels come,
:func:`~unirouter_jax.core.probe.posterior`) and rivals that learn too, it
need not fall on every path; ``docs/probing.md`` reports how it behaves on
real data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, betaln, gammaln

from unirouter_jax.core import curves

Array = jax.Array


def _lower_partial(a, b, t):
  """``E[(t - p)^+]`` for ``p ~ Beta(a, b)``, ``t`` in [0, 1]."""
  mu = a / (a + b)
  return t * betainc(a, b, t) - mu * betainc(a + 1, b, t)


def decision_regret(a, b, t) -> Array:
  """Value of perfect information ``E[(t - p)^+] - (t - mu)^+``, ``p ~
  Beta(a, b)``: the expected loss of deciding ``p < t`` on the mean.

  Elementwise (broadcasts); ``t`` outside (0, 1) gives 0 (the decision is
  certain). Each branch is the small one-sided tail, so there is no
  cancellation of two near-equal terms.
  """
  mu = a / (a + b)
  t = jnp.clip(t, 0.0, 1.0)
  below = _lower_partial(a, b, t)  # t <= mu: E[(t - p)^+]
  above = _lower_partial(b, a, 1 - t)  # t > mu: E[(p - t)^+]
  return jnp.maximum(jnp.where(t <= mu, below, above), 0.0)


def _scores(mu_km, cost_m, pool_m, lam_l) -> Array:
  """``[k, m, l]`` the plug-in rule's ``mu + lam c`` (``+inf`` off the
  pool)."""
  score_kml = mu_km[:, :, None] + lam_l[None, None, :] * cost_m[None, :, None]
  return jnp.where(pool_m[None, :, None], score_kml, jnp.inf)


def rival_threshold(mu_km, cost_m, pool_m, lam_l) -> Array:
  """``[k, m, l]`` error below which LLM ``m`` wins cluster ``k`` at
  ``lam`` against the other pool LLMs at their means ``mu_km``.

  ``lam_l`` in raw cost units. ``+inf`` for an LLM without a rival.
  """
  score_kml = _scores(mu_km, cost_m, pool_m, lam_l)
  m = mu_km.shape[1]
  best_kl = jnp.min(score_kml, axis=1)
  arg_kl = jnp.argmin(score_kml, axis=1)
  is_best_kml = jnp.arange(m)[None, :, None] == arg_kl[:, None, :]
  second_kl = jnp.min(jnp.where(is_best_kml, jnp.inf, score_kml), axis=1)
  rival_kml = jnp.where(is_best_kml, second_kl[:, None], best_kl[:, None])
  return rival_kml - lam_l[None, None, :] * cost_m[None, :, None]


def _regret_kml(a_km, b_km, t_kml):
  return decision_regret(a_km[..., None], b_km[..., None], t_kml)


def _over_lambdas(x_kml, weight_l):
  """Mean over the last axis, or the ``weight_l`` average (sums to 1)."""
  if weight_l is None:
    return x_kml.mean(-1)
  return (x_kml * weight_l).sum(-1)


def area_weights(mu_km, cost_m, pool_m, lam_l, mass_k, cluster_mask_k):
  """``[l]`` the share of the normalised cost axis each cost weight covers.

  Route the probe mass on the means ``mu_km`` at every ``lam_l``
  (ascending) and read the routed cost ``x_l``, normalised to [0, 1] over
  the pool's cost range. The deferral curve is the envelope of these
  points, so a loss ``L_l`` in the routing objective at ``lam_l`` lowers the
  Area by about ``w_l L_l`` with ``w_l`` the half-way spacing of ``x``
  around ``x_l`` (the first point also covers the flat part up to 1, the
  last the part down to 0). The weights are non-negative and sum to 1, so
  a loss ``L`` at every ``lam`` costs ``L`` of Area; cost weights whose
  routing repeats a neighbour's get 0. Uniform ``1 / l`` when the pool
  costs do not differ. Other arguments as :func:`routing_regret`.
  """
  dtype = mu_km.dtype
  # Ties: the lower index, as the plug-in rule.
  pick_kl = jnp.argmin(_scores(mu_km, cost_m, pool_m, lam_l), axis=1)
  w_k = jnp.where(cluster_mask_k, mass_k, 0.0).astype(dtype)
  w_k = w_k / jnp.maximum(w_k.sum(), 1e-12)
  cost_l = (w_k[:, None] * cost_m[pick_kl]).sum(0)
  lo, hi = curves.pool_extremes(cost_m, pool_m)
  ok = jnp.isfinite(hi - lo) & (hi > lo)
  x_l = jnp.clip(curves.normalise_cost(cost_l, lo, hi), 0.0, 1.0)
  edge_l = jnp.concatenate([jnp.ones((1,), dtype), (x_l[:-1] + x_l[1:]) / 2])
  edge_l = jnp.concatenate([edge_l, jnp.zeros((1,), dtype)])
  w_l = jnp.maximum(edge_l[:-1] - edge_l[1:], 0.0)
  w_l = w_l / jnp.maximum(w_l.sum(), 1e-12)
  n = lam_l.shape[0]
  return jnp.where(ok, w_l, jnp.full((n,), 1.0 / n, dtype))


def routing_regret(
    a_km,
    b_km,
    cost_m,
    pool_m,
    lam_l,
    mass_k,
    cluster_mask_k,
    weight_l=None,
) -> Array:
  """``[m]`` the stopping estimate: each pool LLM's expected routing loss
  due to its ``psi`` uncertainty, rivals held at their posterior means
  (module docstring), summed over clusters by probe mass.

  Args:
    a_km, b_km: ``[k, m]`` Beta posteriors of every LLM's cluster error.
    cost_m: ``[m]`` cost the rule charges.
    pool_m: ``[m]`` bool, the LLMs routed among (0 elsewhere).
    lam_l: ``[l]`` cost weights, raw cost units.
    mass_k: ``[k]`` share of the probe prompts in each cluster.
    cluster_mask_k: ``[k]`` bool, the real clusters.
    weight_l: ``[l]`` weights of the cost weights (summing to 1), e.g.
      :func:`area_weights`: then the estimate is in units of Area; None:
      the plain mean over ``lam_l`` (quality per prompt).
  """
  t_kml = rival_threshold(a_km / (a_km + b_km), cost_m, pool_m, lam_l)
  r_km = _over_lambdas(_regret_kml(a_km, b_km, t_kml), weight_l)
  w_k = jnp.where(cluster_mask_k, mass_k, 0.0)
  return jnp.where(pool_m, (w_k[:, None] * r_km).sum(0), 0.0)


def knowledge_gradient(a_km, b_km, t_kml, horizons, *, s_max=None) -> Array:
  """``[k, m, h, l]`` exact ``KG(n) = E[(t - mu_n)^+] - (t - mu)^+`` for
  ``n`` in ``horizons``: the expected fall of the decision regret after
  ``n`` more labels, ``mu_n = (a + s) / (a + b + n)`` with ``s`` beta-
  binomial(``n``, ``a``, ``b``) (the posterior predictive). By the tower
  property it is exactly the expected fall of :func:`decision_regret`
  (and, summed, of :func:`routing_regret` at fixed rivals and weights).

  Since ``E[mu_n] = mu``, for ``t > mu`` it equals ``E[(mu_n - t)^+]``;
  each branch is a one-sided tail (no cancellation). The sums over ``s``
  use cumulative sums and one gather per threshold, so the cost is
  ``O(k m h (s_max + l))``. Near an error of 0 (a cluster every LLM gets
  right) a label moves the mean asymmetrically, which a normal
  approximation misses: exactness matters there.

  Args:
    a_km, b_km: ``[k, m]`` Beta posteriors.
    t_kml: ``[k, m, l]`` thresholds (:func:`rival_threshold`).
    horizons: a static tuple of look-ahead label counts ``n >= 1``, or an
      array ``[k, m, h]`` of counts ``0 <= n <= s_max`` (may be traced).
    s_max: static bound on the counts (default: ``max(horizons)``; needed
      for an array).
  """
  dtype = a_km.dtype
  if isinstance(horizons, tuple):
    s_max = int(max(horizons)) if s_max is None else s_max
    n = jnp.asarray(horizons, dtype)[:, None]  # [h, 1]
  else:
    if s_max is None:
      raise ValueError('s_max: required with an array of horizons.')
    n = jnp.asarray(horizons, dtype)[..., None]  # [k, m, h, 1]
  s_s = jnp.arange(s_max + 1, dtype=dtype)
  a = a_km[..., None, None]
  b = b_km[..., None, None]
  valid = s_s <= n  # [h, s] or [k, m, h, s]
  rest = jnp.where(valid, n - s_s, 0.0)
  log_pmf = (
      gammaln(n + 1)
      - gammaln(s_s + 1)
      - gammaln(rest + 1)
      + betaln(a + s_s, b + rest)
      - betaln(a, b)
  )
  pmf = jnp.where(valid, jnp.exp(log_pmf), 0.0)  # [k, m, h, s]
  pmf = pmf / jnp.maximum(pmf.sum(-1, keepdims=True), 1e-30)
  mu_s = (a + s_s) / (a + b + n)
  zero = jnp.zeros(pmf.shape[:-1] + (1,), dtype)
  f_c = jnp.concatenate([zero, jnp.cumsum(pmf, -1)], -1)  # sum over s < c
  g_c = jnp.concatenate([zero, jnp.cumsum(pmf * mu_s, -1)], -1)
  t = jnp.clip(t_kml, -1.0, 2.0)[:, :, None, :]  # [k, m, 1, l]
  mu = (a_km / (a_km + b_km))[..., None, None]
  # c = #{s <= n: mu_s < t}
  c = jnp.ceil(t * (a + b + n) - a)
  c = jnp.clip(c, 0, n + 1).astype(jnp.int32)
  c = jnp.broadcast_to(c, pmf.shape[:-1] + (t.shape[-1],))
  f = jnp.take_along_axis(f_c, c, axis=-1)
  g = jnp.take_along_axis(g_c, c, axis=-1)
  below = t * f - g  # E[(t - mu_n)^+]
  above = (g_c[..., -1:] - g) - t * (1.0 - f)  # E[(mu_n - t)^+]
  return jnp.maximum(jnp.where(t <= mu, below, above), 0.0)


def _weighted_kg(
    a_km, b_km, n, s_max, cost_m, pool_m, lam_l, mass_k, cluster_mask_k,
    weight_l,
) -> Array:  # fmt: skip
  """``[k, m, h]`` :func:`knowledge_gradient` for ``n`` more labels (a
  static tuple or ``[k, m, h]``), rivals at their current means, averaged
  over ``lam_l`` by ``weight_l`` and weighted by cluster mass; 0 off the
  pool."""
  t_kml = rival_threshold(a_km / (a_km + b_km), cost_m, pool_m, lam_l)
  kg_kmhl = knowledge_gradient(a_km, b_km, t_kml, n, s_max=s_max)
  kg_kmh = jnp.maximum(_over_lambdas(kg_kmhl, weight_l), 0.0)
  w_k = jnp.where(cluster_mask_k, mass_k, 0.0)
  return jnp.where(pool_m[None, :, None], w_k[:, None, None] * kg_kmh, 0.0)


def remaining_gain(
    a_km,
    b_km,
    left_km,
    s_max: int,
    cost_m,
    pool_m,
    lam_l,
    mass_k,
    cluster_mask_k,
    weight_l=None,
) -> Array:
  """``[m]`` the expected fall of :func:`routing_regret` if every probe
  prompt still unlabelled (``left_km`` per cluster, at most the static
  ``s_max``) were labelled: ``KG(left)`` summed over clusters by mass and
  averaged over cost weights by ``weight_l``; rivals held at their means.

  :func:`routing_regret` is the Area lost against the *true* ``psi``; with
  a finite probe set part of it stays whatever is labelled. This is the
  part more labels of this probe set can still remove, the stopping
  rule's quantity. Other arguments as :func:`routing_regret`.
  """
  gain_kmh = _weighted_kg(
      a_km, b_km, left_km[..., None], s_max, cost_m, pool_m, lam_l, mass_k,
      cluster_mask_k, weight_l,
  )  # fmt: skip
  return gain_kmh[..., 0].sum(0)


def value_index(
    a_km,
    b_km,
    horizons,
    cost_m,
    pool_m,
    lam_l,
    mass_k,
    cluster_mask_k,
    weight_l=None,
    avail_km=None,
) -> Array:
  """``[k, m]`` value of information per label of cluster ``k``'s labels.

  The knowledge gradient ``KG(n)`` (:func:`knowledge_gradient`, exact
  under the Beta posterior): the expected fall of the routing regret after
  ``n`` more labels in cluster ``k``, rivals at their current means,
  averaged over ``lam_l`` by ``weight_l`` (None: plain mean), weighted by
  cluster mass, 0 off the pool. One label rarely flips a clear decision
  (``KG(1)`` ~ 0 where ``KG(20)`` is not), so the index is ``max_n KG(n) /
  n`` over the static ``horizons`` that the cluster can still take (``n``
  at most ``avail_km``, its prompts left to label; KG*, Frazier and Powell
  2010). Other arguments as :func:`routing_regret`.
  """
  kg_kmh = _weighted_kg(
      a_km, b_km, horizons, None, cost_m, pool_m, lam_l, mass_k,
      cluster_mask_k, weight_l,
  )  # fmt: skip
  per_label = kg_kmh / jnp.asarray(horizons, a_km.dtype)
  if avail_km is not None:
    ok_kmh = jnp.asarray(horizons) <= avail_km[..., None]
    per_label = jnp.where(ok_kmh, per_label, 0.0)
  return jnp.max(per_label, axis=-1)


def horizons(budget: int) -> tuple[int, ...]:
  """1, 2, 4, ... up to ``budget``: the look-aheads of :func:`value_index`
  (static)."""
  out = [1]
  while out[-1] * 2 <= budget:
    out.append(out[-1] * 2)
  return tuple(out)
