"""Budgeted probing: which probe prompts a new LLM is labelled on.

Onboarding a new LLM into UniRoute means labelling its answers on the probe
(validation) set; only its per-cluster errors ``psi`` are needed, so a
budget of ``B`` labels can be spent where ``psi`` matters for routing
(``docs/probing.md``; the math is in :mod:`unirouter_jax.core.probe`).

A :class:`ProbeStrategy` is a pure function
``choose(ctx, reveal, budget) -> chosen_vm`` (``[v, m]`` bool, exactly
``min(budget, real probe prompts)`` per LLM) of a :class:`ProbeContext`
(the label-free clustering of the probe prompts, a prior fitted to the
known LLMs, uniform priorities drawn from the trial's key) and of
``reveal(mask_vm) -> (error_vm, label_vm)``, the new LLMs' labels on the
prompts of ``mask_vm`` only:

* ``random``: ``budget`` probe prompts uniformly at random.
* ``stratified``: labels split over clusters in proportion to cluster mass
  times the spread of the known LLMs' errors (floored, so a cluster every
  known LLM gets right still gets a few), uniform within a cluster.
* ``active``: sequential batches; each goes to the clusters where more
  labels are expected to reduce the routing regret most, given the new
  LLM's Beta posterior (prior from the known LLMs) after the labels it
  revealed so far. Only ``reveal`` gives it labels, and only on prompts it
  has already chosen.

Every strategy uses the same priorities, so random and stratified subsets
are nested across budgets and paired across strategies.

:func:`budgeted` turns a strategy and a budget into an
:class:`~unirouter_jax.estimators.base.Estimator` that is UniRoute
(K-means) with each pool (test) LLM's probe labels hidden outside its
chosen prompts (training LLMs keep theirs). It shares UniRoute (K-means)'s
prompt side and takes its K from UniRoute (K-means)'s selection
(``selector``), so one ``run_protocol`` call over many (strategy, budget)
pairs clusters once per K and trial. ``psi_rule='hierarchical'`` adds the
hierarchical shrinkage of :func:`hierarchical_psi`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax

from unirouter_jax.core import curves, kmeans, probe, psi, routing
from unirouter_jax.core.structs import Clustering, LLMFeatures, TrialInputs
from unirouter_jax.estimators import builtin
from unirouter_jax.estimators.base import Estimator, TwoStageFit, reused

Array = jax.Array

# [project choice] Cost weights of the regret: the protocol's grid (0, then
# log-spaced over 1e-4..1e4 in normalised cost units), thinned to 24.
REGRET_LAMBDAS = 24
# Salt of the probe priorities' key (apart from every other use of the key).
_PRIORITY_SALT = 0x9B0E


@struct.dataclass
class ProbeContext:
  """What a strategy may know before any new label (one trial, one K).

  Attributes:
    onehot_vk: ``[v, k]`` nearest cluster of each probe prompt.
    cluster_v: ``[v]`` int32 the same as an index.
    real_v: ``[v]`` bool, the real probe prompts (padding excluded).
    mass_k: ``[k]`` share of the real probe prompts in each cluster.
    cluster_mask_k: ``[k]`` bool, the real clusters.
    prior: per-cluster Beta prior of a new LLM's error (known LLMs).
    cost_m: ``[m]`` cost the rule charges.
    pool_m: ``[m]`` bool, the new LLMs (the pool routed among).
    lam_l: ``[l]`` cost weights of the regret, raw cost units.
    priority_vm: ``[v, m]`` uniform priorities (within-cluster order).
  """

  onehot_vk: Array
  cluster_v: Array
  real_v: Array
  mass_k: Array
  cluster_mask_k: Array
  prior: probe.BetaPrior
  cost_m: Array
  pool_m: Array
  lam_l: Array
  priority_vm: Array


def _known_features(inputs: TrialInputs, clustering: Clustering, known_m):
  """``psi`` of the known LLMs on the training prompts."""
  idx = inputs.train_idx
  return psi.cluster_features(
      inputs.emb_nd[idx],
      clustering,
      inputs.error_nm[idx],
      inputs.visible_nm[idx] & known_m[None, :],
  )


def probe_context(key, inputs: TrialInputs, clustering: Clustering):
  """The :class:`ProbeContext` of a trial's test view at one clustering.

  Known LLMs are the training LLMs outside the pool; their labels on the
  training prompts give the prior. Nothing here reads a pool LLM's label.
  """
  emb_vd = inputs.emb_nd[inputs.val_idx]
  v = emb_vd.shape[0]
  real_v = (
      jnp.ones((v,), bool) if inputs.val_mask is None else inputs.val_mask
  )
  onehot_vk = kmeans.one_hot_assign(emb_vd, clustering)
  onehot_vk = onehot_vk * real_v[:, None].astype(onehot_vk.dtype)
  mass_k = onehot_vk.sum(0) / jnp.maximum(real_v.sum(), 1)
  known_m = inputs.train_llm_m & ~inputs.pool_m
  feats = _known_features(inputs, clustering, known_m)
  prior = probe.beta_prior(
      feats.psi_km, feats.count_km, known_m, clustering.cluster_mask_k
  )
  lam_l = curves.scale_lambdas(
      routing.lambda_grid(REGRET_LAMBDAS), inputs.cost_m, inputs.pool_m
  )
  m = inputs.pool_m.shape[0]
  priority_vm = jax.random.uniform(
      jax.random.fold_in(key, _PRIORITY_SALT), (v, m), onehot_vk.dtype
  )
  return ProbeContext(
      onehot_vk=onehot_vk,
      cluster_v=kmeans.assign(emb_vd, clustering),
      real_v=real_v,
      mass_k=mass_k,
      cluster_mask_k=clustering.cluster_mask_k,
      prior=prior,
      cost_m=inputs.cost_m,
      pool_m=inputs.pool_m,
      lam_l=lam_l,
      priority_vm=priority_vm,
  )


Reveal = Callable[[Array], tuple[Array, Array]]


@dataclasses.dataclass(frozen=True)
class ProbeStrategy:
  """A probe-selection rule: ``choose(ctx, reveal, budget) -> [v, m]``.

  ``budget`` is a static int; the result has ``min(budget, real probe
  prompts)`` True entries per LLM, all on real probe prompts.
  """

  name: str
  choose: Callable[[ProbeContext, Reveal, int], Array]


def _avail_km(ctx: ProbeContext, chosen_vm) -> Array:
  """``[k, m]`` int32 real probe prompts not chosen yet."""
  free_vm = (ctx.real_v[:, None] & ~chosen_vm).astype(ctx.onehot_vk.dtype)
  hi = lax.Precision.HIGHEST
  return jnp.round(jnp.matmul(ctx.onehot_vk.T, free_vm, precision=hi)).astype(
      jnp.int32
  )


def _allocate_and_pick(ctx, weight_km, chosen_vm, n, budget):
  """Adds ``n`` prompts per LLM: D'Hondt over clusters on ``weight_km``,
  then uniform within each cluster."""
  n_km = jax.vmap(
      functools.partial(probe.dhondt_allocation, budget=budget),
      in_axes=(1, 1, None),
      out_axes=1,
  )(weight_km, _avail_km(ctx, chosen_vm), n)
  new_vm = jax.vmap(
      probe.pick_in_clusters, in_axes=(1, None, 1, 1), out_axes=1
  )(ctx.priority_vm, ctx.cluster_v, ctx.real_v[:, None] & ~chosen_vm, n_km)
  return chosen_vm | new_vm


def _random_choose(ctx: ProbeContext, reveal, budget: int) -> Array:
  del reveal
  return jax.vmap(probe.random_mask, in_axes=(1, None, None), out_axes=1)(
      ctx.priority_vm, ctx.real_v, budget
  )


def _stratified_choose(ctx: ProbeContext, reveal, budget: int) -> Array:
  del reveal
  weight_k = probe.stratified_weight(ctx.mass_k, ctx.prior)
  m = ctx.pool_m.shape[0]
  weight_km = jnp.broadcast_to(weight_k[:, None], (weight_k.shape[0], m))
  none_vm = jnp.zeros(ctx.priority_vm.shape, bool)
  return _allocate_and_pick(ctx, weight_km, none_vm, budget, budget)


def round_sizes(budget: int, rounds: int) -> list[int]:
  """Batch sizes of the active rounds: ``budget`` split as evenly as
  possible over ``min(rounds, budget)`` rounds, larger ones first."""
  r = max(1, min(rounds, budget))
  return [budget // r + (1 if i < budget % r else 0) for i in range(r)]


def _active_choose(ctx: ProbeContext, reveal, budget: int, *, rounds: int):
  sizes = round_sizes(budget, rounds)
  bmax = max(sizes)
  k_real = jnp.maximum(ctx.cluster_mask_k.sum(), 1)
  # [project choice] Ties (e.g. every decision already certain) go
  # proportionally to the stratified weights.
  tie_k = 1e-6 * probe.stratified_weight(ctx.mass_k, ctx.prior)

  def body(chosen_vm, n_r):
    err_vm, lab_vm = reveal(chosen_vm)
    a_km, b_km = probe.posterior(ctx.prior, ctx.onehot_vk, err_vm, lab_vm)
    # Look ahead by this round's fair share of labels per cluster.
    horizon = jnp.maximum(1.0, n_r / k_real)
    gain_km = probe.active_gain(
        a_km,
        b_km,
        horizon,
        ctx.cost_m,
        ctx.pool_m,
        ctx.lam_l,
        ctx.mass_k,
        ctx.cluster_mask_k,
    )
    weight_km = gain_km + tie_k[:, None]
    return _allocate_and_pick(ctx, weight_km, chosen_vm, n_r, bmax), None

  none_vm = jnp.zeros(ctx.priority_vm.shape, bool)
  chosen_vm, _ = lax.scan(body, none_vm, jnp.asarray(sizes, jnp.int32))
  return chosen_vm


@reused
def random() -> ProbeStrategy:  # noqa: A001 (the strategy's name)
  """Uniform sampling of the probe prompts (seeded by the trial's key)."""
  return ProbeStrategy('random', _random_choose)


@reused
def stratified() -> ProbeStrategy:
  """Cluster mass x known LLMs' error spread, uniform within clusters."""
  return ProbeStrategy('stratified', _stratified_choose)


@reused
def active(rounds: int = 4) -> ProbeStrategy:
  """Sequential batches to the clusters of largest expected regret
  reduction (``rounds`` batches)."""
  if rounds < 1:
    raise ValueError(f'rounds: expected >= 1, got {rounds}.')
  return ProbeStrategy(
      'active' if rounds == 4 else f'active{rounds}',
      functools.partial(_active_choose, rounds=rounds),
  )


STRATEGIES = {'random': random, 'stratified': stratified, 'active': active}


def get_strategy(strategy: str | ProbeStrategy) -> ProbeStrategy:
  """A strategy by name (``random``, ``stratified``, ``active``)."""
  if isinstance(strategy, ProbeStrategy):
    return strategy
  if strategy not in STRATEGIES:
    raise ValueError(
        f'strategy: expected one of {sorted(STRATEGIES)}, got {strategy!r}.'
    )
  return STRATEGIES[strategy]()


def revealer(inputs: TrialInputs) -> Reveal:
  """``reveal(mask_vm) -> (error_vm, label_vm)``: probe labels of every
  LLM on the prompts of ``mask_vm`` only (0 and False elsewhere)."""
  err_vm = inputs.error_nm[inputs.val_idx]
  vis_vm = inputs.visible_nm[inputs.val_idx]

  def reveal(mask_vm):
    lab_vm = vis_vm & mask_vm
    return jnp.where(lab_vm, err_vm, 0.0), lab_vm

  return reveal


def choose_probes(
    strategy: ProbeStrategy,
    budget: int | None,
    key,
    inputs: TrialInputs,
    clustering: Clustering,
):
  """``(chosen_vm, regret_m, ctx)``: the chosen probe prompts of every
  LLM (all real ones when ``budget`` is None) and the stopping estimate
  (:func:`~unirouter_jax.core.probe.routing_regret`) after their labels."""
  ctx = probe_context(key, inputs, clustering)
  reveal = revealer(inputs)
  if budget is None:
    chosen_vm = jnp.broadcast_to(ctx.real_v[:, None], ctx.priority_vm.shape)
  else:
    chosen_vm = strategy.choose(ctx, reveal, budget)
  err_vm, lab_vm = reveal(chosen_vm)
  a_km, b_km = probe.posterior(ctx.prior, ctx.onehot_vk, err_vm, lab_vm)
  regret_m = probe.routing_regret(
      a_km,
      b_km,
      ctx.cost_m,
      ctx.pool_m,
      ctx.lam_l,
      ctx.mass_k,
      ctx.cluster_mask_k,
  )
  return chosen_vm, regret_m, ctx


# ------------------------------------------------- hierarchical shrinkage ---


def hierarchical_psi(
    key, inputs: TrialInputs, clustering: Clustering, keep_vm, pad: int
):
  """``LLMFeatures`` with ``psi`` shrunk fine -> coarse -> global.

  [project choice] The coarse clusters group the fine centroids (weighted
  k-means on them, ``ceil(K / 3)`` groups). Each LLM's coarse error is
  shrunk toward its global error with ``s2`` pseudo-labels, each fine
  error toward its coarse group's with ``s1``. The strengths are
  method-of-moments Beta-binomial concentrations, ``s = mean p(1 - p) /
  tau^2 - 1``, with ``tau^2`` the between-cluster variance (net of
  binomial noise) of the *training* LLMs' errors on the training prompts:
  no test LLM or probe label chooses them.
  """
  dtype = clustering.centroids_kd.dtype
  train_m = inputs.train_llm_m
  tr = _known_features(inputs, clustering, train_m)
  mass_k = jnp.where(clustering.cluster_mask_k, tr.count_km.max(1), 0.0)
  k_real = clustering.cluster_mask_k.sum()
  k_coarse = jnp.maximum(1, (k_real + 2) // 3)
  coarse = kmeans.kmeans(
      jax.random.fold_in(key, _PRIORITY_SALT + 1),
      clustering.centroids_kd,
      mass_k.astype(dtype),
      k_coarse,
      k_max=pad,
      n_init=1,
  )
  group_kg = kmeans.one_hot_assign(clustering.centroids_kd, coarse)
  group_kg = group_kg * clustering.cluster_mask_k[:, None].astype(dtype)

  def strength(psi_km, count_km, mask_k, parent_km):
    w_km = ((count_km > 0) & mask_k[:, None] & train_m[None, :]).astype(dtype)
    dev_km = (psi_km - parent_km) ** 2 - psi_km * (1 - psi_km) / jnp.maximum(
        count_km, 1
    )
    tau2 = jnp.maximum((w_km * dev_km).sum() / jnp.maximum(w_km.sum(), 1), 0)
    pq = (w_km * psi_km * (1 - psi_km)).sum() / jnp.maximum(w_km.sum(), 1)
    return jnp.clip(pq / jnp.maximum(tau2, 1e-6) - 1, 0.0, 1e4)

  def coarse_of(feats: LLMFeatures):
    count_gm = group_kg.T @ feats.count_km
    sum_gm = group_kg.T @ (feats.count_km * feats.psi_km)
    ok = count_gm > 0
    psi_gm = jnp.where(ok, sum_gm / jnp.where(ok, count_gm, 1), 0.5)
    return LLMFeatures(psi_gm, count_gm, feats.global_m)

  tr_coarse = coarse_of(tr)
  g_mask = coarse.cluster_mask_k
  s2 = strength(
      tr_coarse.psi_km, tr_coarse.count_km, g_mask, tr.global_m[None, :]
  )
  s1 = strength(tr.psi_km, tr.count_km, clustering.cluster_mask_k,
                group_kg @ tr_coarse.psi_km)  # fmt: skip
  feats = psi.cluster_features(
      inputs.emb_nd[inputs.val_idx],
      clustering,
      inputs.error_nm[inputs.val_idx],
      keep_vm,
  )
  co = coarse_of(feats)
  coarse_gm = psi.shrunk_psi(co, s2)
  parent_km = group_kg @ coarse_gm
  den_km = feats.count_km + s1
  fine_km = jnp.where(
      den_km > 0,
      (feats.count_km * feats.psi_km + s1 * parent_km)
      / jnp.where(den_km > 0, den_km, 1),
      parent_km,
  )
  # A fine cluster without a coarse group (padding) keeps the plain psi.
  has_group = group_kg.sum(1) > 0
  psi_km = jnp.where(has_group[:, None], fine_km, feats.psi_km)
  return feats.replace(psi_km=psi_km)


# ------------------------------------------------------------ estimator ---


@struct.dataclass
class ProbeParams:
  """Fitted state of a budgeted UniRoute (K-means).

  Attributes:
    clustering: UniRoute (K-means)'s clustering at the selected K.
    features: ``psi`` from the visible labels.
    chosen_vm: ``[v, m]`` the probe prompts each LLM was labelled on.
    regret_m: ``[m]`` the stopping estimate after those labels.
  """

  clustering: Clustering
  features: LLMFeatures
  chosen_vm: Array
  regret_m: Array


def _budgeted_llm_fit(
    clustering, key, inputs, hp, pad, *, strategy, budget, psi_rule
):
  del hp
  chosen_vm, regret_m, ctx = choose_probes(
      strategy, budget, key, inputs, clustering
  )
  vis_vm = inputs.visible_nm[inputs.val_idx]
  # Training LLMs keep every probe label; pool LLMs only the chosen ones.
  keep_vm = vis_vm & (chosen_vm | ~ctx.pool_m[None, :])
  if psi_rule == 'hierarchical':
    feats = hierarchical_psi(key, inputs, clustering, keep_vm, pad)
  else:
    feats = psi.cluster_features(
        inputs.emb_nd[inputs.val_idx],
        clustering,
        inputs.error_nm[inputs.val_idx],
        keep_vm,
    )
  return ProbeParams(clustering, feats, chosen_vm, regret_m)


def _budgeted_gamma(params: ProbeParams, emb_qd, inputs, pad):
  del inputs, pad
  phi_qk = kmeans.one_hot_assign(emb_qd, params.clustering)
  return routing.uniroute_gamma(phi_qk, params.features.psi_km)


@reused
def budgeted(
    strategy: str | ProbeStrategy,
    budget: int | None,
    *,
    psi_rule: str = 'plain',
) -> Estimator:
  """UniRoute (K-means) with ``budget`` probe labels per new LLM.

  Args:
    strategy: a :class:`ProbeStrategy` or its name.
    budget: labels per pool LLM (static int), or None for every probe
      prompt (then equal to UniRoute (K-means), whatever the strategy).
    psi_rule: ``'plain'`` (UniRoute's cluster means, global error in
      empty clusters) or ``'hierarchical'`` (:func:`hierarchical_psi`).

  Returns:
    An Estimator named ``probe_<strategy>_<budget>`` (``_all``; ``_hier``
    with hierarchical shrinkage) that shares UniRoute (K-means)'s
    clustering and its selection of K.
  """
  strategy = get_strategy(strategy)
  if budget is not None and (not isinstance(budget, int) or budget < 1):
    raise ValueError(f'budget: expected an int >= 1 or None, got {budget!r}.')
  if psi_rule not in ('plain', 'hierarchical'):
    raise ValueError(
        f"psi_rule: expected 'plain' or 'hierarchical', got {psi_rule!r}."
    )
  clusters = builtin.uniroute_kmeans()
  suffix = '' if psi_rule == 'plain' else '_hier'
  name = f'probe_{strategy.name}_{"all" if budget is None else budget}'
  return Estimator(
      name=name + suffix,
      fit=TwoStageFit(
          clusters.fit.prompt_fit,
          functools.partial(
              _budgeted_llm_fit,
              strategy=strategy,
              budget=budget,
              psi_rule=psi_rule,
          ),
      ),
      gamma=_budgeted_gamma,
      hp_grid=clusters.hp_grid,
      fixed_grid=clusters.fixed_grid,
      pad_key='k',
      selector=clusters,
      description=(
          f'UniRoute (K-means), {budget or "all"} probe labels per new LLM '
          f'chosen by {strategy.name} ({psi_rule} psi).'
      ),
  )
