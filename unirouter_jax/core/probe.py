"""The math of choosing which probe prompts a new LLM is labelled on.

Onboarding a new LLM into UniRoute costs one label per probe prompt it is
run on, and UniRoute only needs the LLM's per-cluster errors ``psi``. These
pure functions decide *where* a budget of labels goes (``docs/probing.md``).
Axes: ``v`` probe prompts, ``k`` clusters (padded), ``m`` LLMs, ``l`` cost
weights, ``h`` look-ahead horizons, ``j`` the labels a cluster could
receive (a static bound).

* :func:`beta_prior`: a per-cluster Beta prior of a new LLM's error, fitted
  by moments to the known (training) LLMs' errors in that cluster, with a
  logistic ability offset per LLM (:func:`ability`).
* :func:`posterior`: the prior updated with the labels revealed so far.
* :func:`routing_regret`: the expected loss of the plug-in routing decision
  due to ``psi`` uncertainty (the stopping estimate), in units of Area
  when the cost weights are weighted by :func:`area_weights`.
* :func:`knowledge_gradient`: the exact expected fall of that loss after
  ``n`` more labels of a cluster (beta-binomial predictive);
  :func:`remaining_gain` the fall if every probe prompt left were labelled
  (the stopping rule's quantity); :func:`value_index` (KG* per label) the
  active strategy's index.
* :func:`dhondt_allocation`, :func:`greedy_allocation`,
  :func:`pick_in_clusters`, :func:`random_mask`: a static-shape budget
  split over clusters and the prompts it selects.

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
With the ability offset (re-fitted as labels come, ``posterior``) and
rivals that learn too, it need not fall on every path; ``docs/probing.md``
reports how it behaves on real data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax
from jax.scipy.special import betainc, betaln, gammaln

Array = jax.Array

# [project choice] Bounds of the prior's concentration (pseudo-labels): at
# least 2 (a Beta(2m, 2(1-m)) is still vague), at most 50 (a handful of
# known LLMs cannot justify more confidence than some tens of labels; where
# they agree exactly, the moment estimate is infinite).
MIN_CONCENTRATION = 2.0
MAX_CONCENTRATION = 50.0
# Prior means (Jeffreys-smoothed) are kept in [eps, 1 - eps] so a and b stay
# positive where every known LLM is always right (or wrong).
MEAN_EPS = 1e-3
# Stratified floor: a cluster where the known LLMs agree exactly still gets
# a share as if their errors spread by this much (the new LLM may differ).
SPREAD_FLOOR = 0.02


@struct.dataclass
class BetaPrior:
  """Per-cluster prior of a new LLM's error, from the known LLMs.

  The prior mean of LLM ``m`` in cluster ``k`` is ``sigmoid(logit_k +
  delta_m)``: a cluster difficulty from the known LLMs plus the LLM's own
  ability offset ``delta_m`` (:func:`ability`; 0 before any label), and
  ``conc_k`` pseudo-labels of it.

  Attributes:
    logit_k: ``[k]`` logit of the known LLMs' mean error (clipped).
    conc_k: ``[k]`` prior concentration: the between-LLM variance of the
      known LLMs' errors left after their ability offsets, net of binomial
      noise, matched by moments (vague 2 with fewer than two known LLMs).
    ability_sd: ``[]`` spread of the known LLMs' ability offsets, the
      prior scale of a new LLM's offset.
    mean_k: ``[k]`` the known LLMs' mean error in the cluster (0.5 if none).
    spread_k: ``[k]`` their raw between-LLM standard deviation, net of the
      binomial noise of each mean (0 with fewer than two known LLMs).
  """

  logit_k: Array
  conc_k: Array
  ability_sd: Array
  mean_k: Array
  spread_k: Array


def _logit(p):
  return jnp.log(p) - jnp.log1p(-p)


def _ability_hessian(logit_k, n_km, d_m, prec):
  p_km = jax.nn.sigmoid(logit_k[:, None] + d_m[None, :])
  return p_km, (n_km * p_km * (1 - p_km)).sum(0) + prec


def ability(logit_k, n_km, e_km, sd, *, iters: int = 12):
  """``(delta_m, var_m)``: MAP ability offsets ``[m]`` of ``err ~
  Bernoulli(sigmoid(logit_k + delta_m))`` with ``delta_m ~ N(0, sd^2)``,
  from ``n_km`` labels with ``e_km`` errors per cluster (Newton steps; the
  objective is convex), and their Laplace variances ``[m]``."""
  prec = 1.0 / jnp.maximum(sd, 1e-3) ** 2

  def step(_, d_m):
    p_km, h_m = _ability_hessian(logit_k, n_km, d_m, prec)
    g_m = (n_km * p_km - e_km).sum(0) + prec * d_m
    return jnp.clip(d_m - g_m / h_m, -8.0, 8.0)

  d_m = lax.fori_loop(0, iters, step, jnp.zeros(n_km.shape[1], n_km.dtype))
  return d_m, 1.0 / _ability_hessian(logit_k, n_km, d_m, prec)[1]


def beta_prior(psi_km, count_km, known_m, cluster_mask_k) -> BetaPrior:
  """Method-of-moments prior per cluster from the known LLMs.

  Args:
    psi_km: ``[k, m]`` the known LLMs' mean errors per cluster (e.g. on the
      training prompts).
    count_km: ``[k, m]`` labels behind each mean.
    known_m: ``[m]`` bool, the known LLMs.
    cluster_mask_k: ``[k]`` bool, the real clusters.
  """
  dtype = jnp.result_type(psi_km, float)
  has_km = known_m[None, :] & (count_km > 0) & cluster_mask_k[:, None]
  w_km = has_km.astype(dtype)
  n_k = w_km.sum(1)
  safe_n = jnp.maximum(n_k, 1.0)

  def across(x_km):  # mean over the known LLMs with labels there
    return (w_km * x_km).sum(1) / safe_n

  mean_k = jnp.where(n_k > 0, across(psi_km), 0.5)
  # Each known LLM's mean is itself noisy: remove the binomial part.
  noise_k = across(psi_km * (1 - psi_km) / jnp.maximum(count_km, 1.0))
  var_k = across((psi_km - mean_k[:, None]) ** 2)
  spread2_k = jnp.where(n_k >= 2, jnp.maximum(var_k - noise_k, 0.0), 0.0)
  # Jeffreys-smoothed means (0 of 200 wrong is 0.0025, not 0).
  smooth_km = (psi_km * count_km + 0.5) / (count_km + 1.0)
  mbar_k = jnp.where(n_k > 0, across(smooth_km), 0.5)
  mbar_k = jnp.clip(mbar_k, MEAN_EPS, 1 - MEAN_EPS)
  logit_k = _logit(mbar_k)
  # The known LLMs' abilities (weak N(0, 3^2) prior) and what is left.
  n_lab_km = w_km * count_km
  d_m, _ = ability(logit_k, n_lab_km, n_lab_km * psi_km, 3.0)
  n_known = (known_m & (w_km.sum(0) > 0)).astype(dtype)
  d_m = jnp.where(n_known > 0, d_m, 0.0)
  d_mean = (n_known * d_m).sum() / jnp.maximum(n_known.sum(), 1)
  d_var = (n_known * (d_m - d_mean) ** 2).sum() / jnp.maximum(
      n_known.sum() - 1, 1
  )
  enough = n_known.sum() >= 2
  ability_sd = jnp.where(enough, jnp.clip(jnp.sqrt(d_var), 0.3, 3.0), 1.0)
  fit_km = jax.nn.sigmoid(logit_k[:, None] + d_m[None, :])
  res2_k = jnp.maximum(across((psi_km - fit_km) ** 2) - noise_k, 0.0)
  conc_k = mbar_k * (1 - mbar_k) / jnp.maximum(res2_k, 1e-8) - 1
  conc_k = jnp.clip(conc_k, MIN_CONCENTRATION, MAX_CONCENTRATION)
  # Fewer than two known LLMs say nothing about the spread: vague.
  vague = n_k < 2
  return BetaPrior(
      logit_k=jnp.where(vague, 0.0, logit_k).astype(dtype),
      conc_k=jnp.where(vague, MIN_CONCENTRATION, conc_k).astype(dtype),
      ability_sd=ability_sd.astype(dtype),
      mean_k=mean_k,
      spread_k=jnp.sqrt(spread2_k),
  )


def stratified_weight(mass_k, prior: BetaPrior) -> Array:
  """``[k]`` cluster mass times the known LLMs' error spread (floored at
  ``SPREAD_FLOOR``)."""
  return mass_k * (prior.spread_k + SPREAD_FLOOR)


def posterior(
    prior: BetaPrior, onehot_vk, error_vm, label_vm, *, use_ability=True
):
  """``(a_km, b_km)``: the prior plus the labels where ``label_vm``.

  With ``use_ability`` the prior mean is first moved by each LLM's ability
  offset fitted to those same labels (empirical Bayes); without, the prior
  is fixed and the update is exactly conjugate.

  Args:
    prior: the per-cluster prior.
    onehot_vk: ``[v, k]`` cluster of each probe prompt (0 rows: ignored).
    error_vm: ``[v, m]`` errors (any value where not labelled, NaN too).
    label_vm: ``[v, m]`` bool, the labels revealed so far.
  """
  dtype = onehot_vk.dtype
  hi = lax.Precision.HIGHEST
  e_vm = jnp.where(label_vm, error_vm, 0).astype(dtype)
  n_vm = label_vm.astype(dtype)
  wrong_km = jnp.matmul(onehot_vk.T, e_vm, precision=hi)
  count_km = jnp.matmul(onehot_vk.T, n_vm, precision=hi)
  m = label_vm.shape[1]
  c_km = jnp.broadcast_to(prior.conc_k[:, None], count_km.shape)
  if use_ability:
    d_m, var_m = ability(prior.logit_k, count_km, wrong_km, prior.ability_sd)
  else:
    d_m, var_m = jnp.zeros((m,), dtype), jnp.zeros((m,), dtype)
  mu0_km = jax.nn.sigmoid(prior.logit_k[:, None] + d_m[None, :])
  mu0_km = jnp.clip(mu0_km, MEAN_EPS, 1 - MEAN_EPS)
  if use_ability:
    # The offset is uncertain too: its (delta-method) variance widens the
    # prior, so few labels do not make the posterior overconfident.
    pq_km = mu0_km * (1 - mu0_km)
    var_km = pq_km / (c_km + 1) + pq_km**2 * var_m[None, :]
    c_km = jnp.maximum(pq_km / var_km - 1, 0.5)
  return mu0_km * c_km + wrong_km, (1 - mu0_km) * c_km + count_km - wrong_km


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


def rival_threshold(mu_km, cost_m, pool_m, lam_l) -> Array:
  """``[k, m, l]`` error below which LLM ``m`` wins cluster ``k`` at
  ``lam`` against the other pool LLMs at their means ``mu_km``.

  ``lam_l`` in raw cost units. ``+inf`` for an LLM without a rival.
  """
  score_kml = mu_km[:, :, None] + lam_l[None, None, :] * cost_m[None, :, None]
  score_kml = jnp.where(pool_m[None, :, None], score_kml, jnp.inf)
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
  score_kml = mu_km[:, :, None] + lam_l[None, None, :] * cost_m[None, :, None]
  score_kml = jnp.where(pool_m[None, :, None], score_kml, jnp.inf)
  pick_kl = jnp.argmin(score_kml, axis=1)  # ties: the lower index
  w_k = jnp.where(cluster_mask_k, mass_k, 0.0).astype(dtype)
  w_k = w_k / jnp.maximum(w_k.sum(), 1e-12)
  cost_l = (w_k[:, None] * cost_m[pick_kl]).sum(0)
  c = jnp.where(pool_m, cost_m, jnp.nan)
  lo, hi = jnp.nanmin(c), jnp.nanmax(c)
  span = hi - lo
  ok = jnp.isfinite(span) & (span > 0)
  x_l = jnp.clip((cost_l - lo) / jnp.where(ok, span, 1.0), 0.0, 1.0)
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
  pmf = jnp.broadcast_to(pmf, a_km.shape + pmf.shape[-2:])
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


def greedy_allocation(value_kj, avail_k, n) -> Array:
  """``[k]`` int32: labels per cluster from the ``n`` largest entries of
  ``value_kj`` (``[k, j]``: the worth of cluster ``k``'s ``j + 1``-th
  label; ``j`` up to a static bound, which ``n`` must not exceed), at most
  ``avail_k`` per cluster; ties go to the lower cluster. Sums to
  ``min(n, sum(avail_k), ...)``. With values non-increasing in ``j`` this
  is the greedy (one label at a time) allocation.
  """
  k, steps = value_kj.shape
  j_j = jnp.arange(steps)
  value_kj = jnp.where(j_j[None, :] < avail_k[:, None], value_kj, -jnp.inf)
  top, idx = lax.top_k(value_kj.reshape(-1), steps)
  take = (jnp.arange(steps) < n) & jnp.isfinite(top)
  cluster = idx // steps
  return jnp.zeros((k,), jnp.int32).at[cluster].add(take.astype(jnp.int32))


def dhondt_allocation(weight_k, avail_k, n, *, budget: int) -> Array:
  """``[k]`` int32 labels per cluster: the D'Hondt (highest-averages) split
  of ``n`` labels in proportion to ``weight_k``, at most ``avail_k`` each.

  Entry ``(k, j)`` is worth ``weight_k / (j + 1)``
  (:func:`greedy_allocation`). Sums to ``min(n, sum(avail_k))``.
  Proportional, and house-monotone: a larger ``n`` never takes a label
  away from a cluster.

  Args:
    weight_k: ``[k]`` non-negative weights.
    avail_k: ``[k]`` int prompts still available per cluster.
    n: labels to split (may be traced), at most ``budget``.
    budget: static bound on ``n`` (the table has ``budget`` columns).
  """
  j_j = jnp.arange(budget)
  return greedy_allocation(weight_k[:, None] / (j_j[None, :] + 1.0), avail_k, n)


def pick_in_clusters(priority_v, cluster_v, eligible_v, n_k) -> Array:
  """``[v]`` bool: in each cluster ``k``, the ``n_k`` eligible prompts of
  smallest ``priority_v`` (uniform random priorities: uniform sampling
  without replacement within each cluster). Static shapes: one sort.
  """
  k, v = n_k.shape[0], priority_v.shape[0]
  # Sort by (cluster, priority), the ineligible prompts last.
  order = jnp.lexsort((priority_v, jnp.where(eligible_v, cluster_v, k)))
  rank_v = (
      jnp.zeros((v,), jnp.int32).at[order].set(jnp.arange(v, dtype=jnp.int32))
  )
  count_k = (
      jnp.zeros((k,), jnp.int32).at[cluster_v].add(eligible_v.astype(jnp.int32))
  )
  start_k = jnp.cumsum(count_k) - count_k
  within_v = rank_v - start_k[cluster_v]
  return eligible_v & (within_v < n_k[cluster_v])


def random_mask(priority_v, real_v, budget: int) -> Array:
  """``[v]`` bool: the ``budget`` real prompts of smallest priority (all
  of them when there are fewer)."""
  key_v = jnp.where(real_v, priority_v, jnp.inf)
  rank_v = jnp.argsort(jnp.argsort(key_v))
  return real_v & (rank_v < budget)
