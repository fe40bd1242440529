"""The beliefs and budgets of choosing which probe prompts a new LLM is
labelled on.

Onboarding a new LLM into UniRoute costs one label per probe prompt it is
run on, and UniRoute only needs the LLM's per-cluster errors ``psi``. These
pure functions hold what is believed about a new LLM's errors and split a
budget of labels over clusters (``docs/probing.md``); the value of those
labels for the routing decision is :mod:`unirouter_jax.core.regret`.
Axes: ``v`` probe prompts, ``k`` clusters (padded), ``m`` LLMs, ``j`` the
labels a cluster could receive (a static bound).

* :func:`beta_prior`: a per-cluster Beta prior of a new LLM's error, fitted
  by moments to the known (training) LLMs' errors in that cluster, with a
  logistic ability offset per LLM (:func:`ability`).
* :func:`posterior`: the prior updated with the labels revealed so far.
* :func:`stratified_weight`: cluster mass x the known LLMs' error spread.
* :func:`dhondt_allocation`, :func:`greedy_allocation`,
  :func:`pick_in_clusters`, :func:`random_mask`: a static-shape budget
  split over clusters and the prompts it selects.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax

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
