"""Budgeted probing: which probe prompts a new LLM is labelled on.

Onboarding a new LLM into UniRoute means labelling its answers on the probe
(validation) set; only its per-cluster errors ``psi`` are needed, so a
budget of ``B`` labels can be spent where ``psi`` matters for routing
(``docs/probing.md``; the math is in :mod:`unirouter_jax.core.probe` and
:mod:`unirouter_jax.core.regret`).

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
* ``active``: sequential batches (``rounds``); each is split over the
  clusters in proportion to the value of information per label of the
  routing decision (``core.regret.value_index``), given each new LLM's Beta
  posterior (prior from the known LLMs) after the labels it revealed so
  far. Only ``reveal`` gives it labels, and only on prompts it has already
  chosen.

Every strategy uses the same priorities, so random and stratified subsets
are nested across budgets and paired across strategies.

:func:`budgeted` turns a strategy and a budget into an
:class:`~unirouter_jax.estimators.base.Estimator` that is UniRoute
(K-means) with each pool (test) LLM's probe labels hidden outside its
chosen prompts (training LLMs keep theirs). It shares UniRoute (K-means)'s
prompt side and takes its K from UniRoute (K-means)'s selection
(``selector``), so one ``run_protocol`` call over many (strategy, budget)
pairs clusters once per K and trial. ``psi_rule`` replaces the plain
cluster means: ``'posterior'`` (the Beta posterior mean), ``'imputed'`` or
``'hierarchical'`` (:mod:`~unirouter_jax.estimators.partial_psi`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax

from unirouter_jax.core import curves, kmeans, probe, psi, regret, routing
from unirouter_jax.core.structs import Clustering, LLMFeatures, TrialInputs
from unirouter_jax.estimators import builtin, partial_psi
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


def probe_context(key, inputs: TrialInputs, clustering: Clustering):
  """The :class:`ProbeContext` of a trial's test view at one clustering.

  Known LLMs are the training LLMs outside the pool; their labels on the
  training prompts give the prior. Nothing here reads a pool LLM's label.
  """
  emb_vd = inputs.emb_nd[inputs.val_idx]
  v = emb_vd.shape[0]
  real_v = jnp.ones((v,), bool) if inputs.val_mask is None else inputs.val_mask
  onehot_vk = kmeans.one_hot_assign(emb_vd, clustering)
  onehot_vk = onehot_vk * real_v[:, None].astype(onehot_vk.dtype)
  mass_k = onehot_vk.sum(0) / jnp.maximum(real_v.sum(), 1)
  known_m = inputs.train_llm_m & ~inputs.pool_m
  feats = partial_psi.known_features(inputs, clustering, known_m)
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


def _pick(ctx, n_km, chosen_vm):
  """Adds ``n_km`` prompts per cluster and LLM, uniform within clusters."""
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
  n_km = jax.vmap(
      functools.partial(probe.dhondt_allocation, budget=budget),
      in_axes=(1, 1, None),
      out_axes=1,
  )(weight_km, _avail_km(ctx, none_vm), budget)
  return _pick(ctx, n_km, none_vm)


def round_sizes(budget: int, rounds: int) -> list[int]:
  """Batch sizes of the active rounds: ``budget`` split as evenly as
  possible over ``min(rounds, budget)`` rounds, larger ones first."""
  r = max(1, min(rounds, budget))
  return [budget // r + (1 if i < budget % r else 0) for i in range(r)]


def _area_weights(ctx: ProbeContext, a_km, b_km) -> Array:
  """``[l]`` Area weights of the cost weights under the posterior means."""
  return regret.area_weights(
      a_km / (a_km + b_km),
      ctx.cost_m,
      ctx.pool_m,
      ctx.lam_l,
      ctx.mass_k,
      ctx.cluster_mask_k,
  )


def _active_choose(ctx: ProbeContext, reveal, budget: int, *, rounds: int):
  sizes = round_sizes(budget, rounds)
  bmax = max(sizes)
  horizons = regret.horizons(budget)
  # [project choice] A small share of the stratified weights breaks ties
  # (e.g. every decision already certain: all values 0).
  tie_k = 1e-7 * probe.stratified_weight(ctx.mass_k, ctx.prior)

  def body(chosen_vm, n_r):
    err_vm, lab_vm = reveal(chosen_vm)
    a_km, b_km = probe.posterior(ctx.prior, ctx.onehot_vk, err_vm, lab_vm)
    avail_km = _avail_km(ctx, chosen_vm)
    index_km = regret.value_index(
        a_km,
        b_km,
        horizons,
        ctx.cost_m,
        ctx.pool_m,
        ctx.lam_l,
        ctx.mass_k,
        ctx.cluster_mask_k,
        weight_l=_area_weights(ctx, a_km, b_km),
        avail_km=avail_km,
    )
    n_km = jax.vmap(
        functools.partial(probe.dhondt_allocation, budget=bmax),
        in_axes=(1, 1, None),
        out_axes=1,
    )(index_km + tie_k[:, None], avail_km, n_r)
    return _pick(ctx, n_km, chosen_vm), None

  none_vm = jnp.zeros(ctx.priority_vm.shape, bool)
  chosen_vm, _ = lax.scan(body, none_vm, jnp.asarray(sizes, jnp.int32))
  return chosen_vm


@reused
def random() -> ProbeStrategy:
  """Uniform sampling of the probe prompts (seeded by the trial's key)."""
  return ProbeStrategy('random', _random_choose)


@reused
def stratified() -> ProbeStrategy:
  """Cluster mass x known LLMs' error spread, uniform within clusters."""
  return ProbeStrategy('stratified', _stratified_choose)


# [project choice] Sequential batches of the active strategy: more rounds
# adapt more but cost a posterior and an index each; docs/probing.md
# compares 4, 8 and 16 rounds on the same trials.
ACTIVE_ROUNDS = 8


@reused
def active(rounds: int = ACTIVE_ROUNDS) -> ProbeStrategy:
  """``rounds`` sequential batches, each split over the clusters (D'Hondt)
  in proportion to the value of information per label of the routing
  decision (KG* of the exact knowledge gradient, Area-weighted,
  ``core.regret.value_index``) under each new LLM's posterior so far."""
  if rounds < 1:
    raise ValueError(f'rounds: expected >= 1, got {rounds}.')
  return ProbeStrategy(
      'active' if rounds == ACTIVE_ROUNDS else f'active{rounds}',
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


@struct.dataclass
class ProbeOutcome:
  """What a strategy chose and what the labels say.

  Attributes:
    chosen_vm: ``[v, m]`` the probe prompts each LLM is labelled on.
    a_km, b_km: ``[k, m]`` Beta posterior of each LLM's cluster error.
    regret_m: ``[m]`` the stopping estimate after those labels: the Area
      lost to ``psi`` uncertainty
      (:func:`~unirouter_jax.core.regret.routing_regret`; 0 off the pool).
    gain_left_m: ``[m]`` the part of it that labelling every probe prompt
      left is expected to remove
      (:func:`~unirouter_jax.core.regret.remaining_gain`).
  """

  chosen_vm: Array
  a_km: Array
  b_km: Array
  regret_m: Array
  gain_left_m: Array


def choose_probes(
    strategy: ProbeStrategy,
    budget: int | None,
    key,
    inputs: TrialInputs,
    clustering: Clustering,
) -> tuple[ProbeOutcome, ProbeContext]:
  """The chosen probe prompts of every LLM (all real ones when ``budget``
  is None), their posterior and the stopping estimate."""
  ctx = probe_context(key, inputs, clustering)
  reveal = revealer(inputs)
  if budget is None:
    chosen_vm = jnp.broadcast_to(ctx.real_v[:, None], ctx.priority_vm.shape)
  else:
    chosen_vm = strategy.choose(ctx, reveal, budget)
  a_km, b_km = probe.posterior(ctx.prior, ctx.onehot_vk, *reveal(chosen_vm))
  rest = (
      ctx.cost_m,
      ctx.pool_m,
      ctx.lam_l,
      ctx.mass_k,
      ctx.cluster_mask_k,
      _area_weights(ctx, a_km, b_km),
  )
  regret_m = regret.routing_regret(a_km, b_km, *rest)
  left_km = _avail_km(ctx, chosen_vm)
  v = ctx.priority_vm.shape[0]
  gain_m = regret.remaining_gain(a_km, b_km, left_km, v, *rest)
  return ProbeOutcome(chosen_vm, a_km, b_km, regret_m, gain_m), ctx


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
  out, ctx = choose_probes(strategy, budget, key, inputs, clustering)
  vis_vm = inputs.visible_nm[inputs.val_idx]
  # Training LLMs keep every probe label; pool LLMs only the chosen ones.
  keep_vm = vis_vm & (out.chosen_vm | ~ctx.pool_m[None, :])
  if psi_rule == 'hierarchical':
    feats = partial_psi.hierarchical_psi(key, inputs, clustering, keep_vm, pad)
  elif psi_rule == 'imputed':
    feats = partial_psi.imputed_psi(
        inputs, clustering, out.chosen_vm, ctx.real_v
    )
  else:
    feats = psi.cluster_features(
        inputs.emb_nd[inputs.val_idx],
        clustering,
        inputs.error_nm[inputs.val_idx],
        keep_vm,
    )
  if psi_rule == 'posterior':
    # The pool LLMs' posterior means (prior from the known LLMs).
    post_km = out.a_km / (out.a_km + out.b_km)
    use_km = ctx.pool_m[None, :] & clustering.cluster_mask_k[:, None]
    feats = feats.replace(psi_km=jnp.where(use_km, post_km, feats.psi_km))
  return ProbeParams(clustering, feats, out.chosen_vm, out.regret_m)


def _budgeted_gamma(params: ProbeParams, emb_qd, inputs, pad):
  del inputs, pad
  phi_qk = kmeans.one_hot_assign(emb_qd, params.clustering)
  return routing.uniroute_gamma(phi_qk, params.features.psi_km)


# psi rules and the suffix of their estimators' names.
PSI_RULES = {
    'plain': '',
    'posterior': '_post',
    'hierarchical': '_hier',
    'imputed': '_imp',
}


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
    psi_rule: ``'plain'`` (UniRoute's cluster means, the LLM's global error
      in empty clusters), ``'posterior'`` (each pool LLM's Beta posterior
      mean: the known LLMs' prior plus its labels), ``'imputed'`` or
      ``'hierarchical'`` (:mod:`~unirouter_jax.estimators.partial_psi`).

  Returns:
    An Estimator named ``probe_<strategy>_<budget>`` (``_all`` for every
    prompt; the suffix of ``PSI_RULES`` for the other ``psi_rule`` s)
    that shares UniRoute (K-means)'s clustering and its selection of K.
  """
  strategy = get_strategy(strategy)
  if budget is not None and (not isinstance(budget, int) or budget < 1):
    raise ValueError(f'budget: expected an int >= 1 or None, got {budget!r}.')
  if psi_rule not in PSI_RULES:
    raise ValueError(
        f'psi_rule: expected one of {sorted(PSI_RULES)}, got {psi_rule!r}.'
    )
  clusters = builtin.uniroute_kmeans()
  suffix = PSI_RULES[psi_rule]
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


@reused
def uniroute_hierarchical() -> Estimator:
  """UniRoute (K-means) with hierarchical shrinkage of ``psi``: every probe
  label, each fine cluster's error shrunk toward its coarse group's, that
  toward the LLM's global error, strengths fitted to the training LLMs
  only (:func:`~unirouter_jax.estimators.partial_psi.hierarchical_psi`).
  K is UniRoute (K-means)'s selection; the CLI and configs call it
  ``uniroute_hierarchical``."""
  est = budgeted('random', None, psi_rule='hierarchical')
  return dataclasses.replace(
      est,
      name='uniroute_hierarchical',
      description=(
          'UniRoute (K-means), psi shrunk fine -> coarse -> global '
          '(strengths from the training LLMs).'
      ),
  )
