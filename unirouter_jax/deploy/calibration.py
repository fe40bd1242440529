"""Choosing the cost weight and the shrinkage strength on held-out prompts.

:func:`calibrate_lambda` turns a user's target into a cost weight ``lam``:
a target mean cost per query (a budget), or a target share of the best
single LLM's quality. The mean routed cost is non-increasing in ``lam`` and
the estimated quality too, so a bisection on ``log(lam)`` (60 steps, jitted
as one ``lax.fori_loop``) finds the boundary.

**[project choice]** randomised mixing. UniRoute (K-means) gives every
prompt of a cluster the same estimated errors, so all of them switch LLM at
the same ``lam``: the mean cost is a step function with jumps as large as a
cluster's share of the traffic (a soft or learned map has a step per
prompt, smaller but still steps). To hit a target between two steps, the
result also holds the neighbouring cost weight ``lam_alt`` on the other side
of the target and the probability ``mix`` of routing a prompt with it, so
that the *expected* cost (or quality) equals the target on the calibration
prompts (mixing two routers reaches any point between them, method.md 3).
:func:`route_calibrated` applies it with a PRNG key; without a key it uses
``lam`` alone, which never exceeds the budget on the calibration prompts.

The bisection ends on a step's edge, where two LLMs' scores tie to the last
bit; ``lam`` and ``lam_alt`` are then moved to the middle of their steps
(:mod:`unirouter_jax.deploy.breakpoints`, of the clusters' ``psi`` rows
under K-means and of every calibration prompt's ``gamma`` row under a soft
or learned map, up to 2^23 breakpoints; checked to meet the target on
one side only, as before), so that a gateway routing with them in float64, or
without fused multiply-add, decides as this router does.
:func:`calibrate_budgets` calibrates many budgets in one vmapped call (the
calibrated lambdas of an exported router).

:func:`select_shrinkage` picks the shrinkage pseudo-count by the Area of the
deferral curve (method.md 3) on labelled held-out prompts, routed through
the router's cluster map.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from unirouter_jax.core import curves, psi, routing
from unirouter_jax.core.structs import EvalSet, RouteOutput, Router
from unirouter_jax.deploy import breakpoints, rule
from unirouter_jax.deploy import cluster_map as maps
from unirouter_jax.deploy import router as router_lib

Array = jax.Array

_ITERS = 60


@struct.dataclass
class Calibration:
  """A calibrated cost weight, with target and achieved values.

  Attributes:
    lam: ``[]`` cost weight meeting the target (cost <= target, or quality
      >= target) on the calibration prompts.
    lam_alt: ``[]`` neighbouring cost weight on the other side of it.
    mix: ``[]`` probability of routing a prompt with ``lam_alt``.
    target: ``[]`` the target (mean cost, or quality share in [0, 1]).
    cost: ``[]`` mean cost at ``lam``; ``mixed_cost``: expected with mixing.
    quality: ``[]`` mean quality at ``lam`` (realised when labels were
      given, else estimated); ``mixed_quality``: expected with mixing.
    best_quality: ``[]`` mean quality of the best single pool LLM.
    reached: ``[]`` bool, whether the target is attainable at all.
    kind: ``'cost'`` or ``'quality_share'`` (static).
  """

  lam: Array
  lam_alt: Array
  mix: Array
  target: Array
  cost: Array
  mixed_cost: Array
  quality: Array
  mixed_quality: Array
  best_quality: Array
  reached: Array
  kind: str = struct.field(pytree_node=False, default='cost')

  def report(self) -> dict[str, float | bool | str]:
    """Target vs achieved, as plain Python values (for JSON / printing)."""
    out = {
        k: float(getattr(self, k))
        for k in (
            'lam',
            'lam_alt',
            'mix',
            'target',
            'cost',
            'mixed_cost',
            'quality',
            'mixed_quality',
            'best_quality',
        )
    }
    out['quality_share'] = out['quality'] / max(out['best_quality'], 1e-12)
    out['mixed_quality_share'] = out['mixed_quality'] / max(
        out['best_quality'], 1e-12
    )
    out['reached'] = bool(self.reached)
    out['kind'] = self.kind
    return out


def _calibrate_one(
    gamma_qm,
    cost_m,
    pool_m,
    quality_qm,
    label_mask_qm,
    bp_p,
    noise_p,
    target,
    *,
    kind,
    realised,
):
  # The rule never sees the labels; with realised labels, the prompts that
  # count are those labelled for every pool LLM (as in the protocol).
  q_qm = quality_qm if realised else 1.0 - gamma_qm
  scored_q = curves.scored_prompts(label_mask_qm, pool_m).astype(q_qm.dtype)
  total = jnp.maximum(scored_q.sum(), 1.0)
  w_q = scored_q / total

  def stats(lam):
    choice_q = rule.choose(gamma_qm, cost_m, lam, pool_m)
    # Mean cost from whole counts per LLM (exact in float32), so that all
    # traffic on one LLM costs exactly its cost.
    count_m = jnp.zeros_like(cost_m).at[choice_q].add(scored_q)
    cost = jnp.sum(cost_m * count_m) / total
    qual = jnp.sum(w_q * jnp.take_along_axis(q_qm, choice_q[:, None], 1)[:, 0])
    return cost, qual, choice_q

  col_q_m = jnp.sum(jnp.where(label_mask_qm, q_qm, 0) * w_q[:, None], 0)
  best = jnp.max(jnp.where(pool_m, col_q_m, -jnp.inf))
  goal = target if kind == 'cost' else target * best

  def ok(lam):  # cost: true for large lam; quality: true for small lam
    cost, qual, _ = stats(lam)
    return cost <= goal if kind == 'cost' else qual >= goal

  hi = curves.lambda_cap(cost_m, pool_m)
  lo = hi * 1e-12

  def body(_, bounds):
    a, b = bounds  # log-space bracket; `a` is the ok side
    mid = 0.5 * (a + b)
    good = ok(jnp.exp(mid))
    return jnp.where(good, mid, a), jnp.where(good, b, mid)

  log_ok, log_bad = (
      (jnp.log(hi), jnp.log(lo))
      if kind == 'cost'
      else (jnp.log(lo), jnp.log(hi))
  )
  a, b = jax.lax.fori_loop(0, _ITERS, body, (log_ok, log_bad))
  lam, lam_alt = jnp.exp(a), jnp.exp(b)
  # Endpoints: lam = 0 (most accurate) and lam = hi (cheapest).
  if kind == 'cost':
    zero_ok = ok(0.0)
    reached = ok(hi)
    lam = jnp.where(zero_ok, 0.0, jnp.where(reached, lam, hi))
    lam_alt = jnp.where(zero_ok | ~reached, lam, lam_alt)
  else:
    reached = ok(0.0)
    all_ok = ok(hi)
    lam = jnp.where(all_ok, hi, jnp.where(reached, lam, 0.0))
    lam_alt = jnp.where(all_ok | ~reached, lam, lam_alt)
  # Off the boundary, where float rounding decides, into the middle of the
  # steps on either side (breakpoints.py); kept if the target still is met
  # on one side only.
  mid, mid_alt = breakpoints.interior(lam, lam_alt, bp_p, noise_p)
  use = (lam != lam_alt) & ok(mid) & ~ok(mid_alt)
  lam, lam_alt = jnp.where(use, mid, lam), jnp.where(use, mid_alt, lam_alt)
  cost, qual, _ = stats(lam)
  cost_alt, qual_alt, _ = stats(lam_alt)
  if kind == 'cost':
    num, den = goal - cost, cost_alt - cost
  else:
    num, den = qual - goal, qual - qual_alt
  mix = jnp.where(den > 0, jnp.clip(num / jnp.where(den > 0, den, 1), 0, 1), 0)
  mix = jnp.where(reached, mix, 0.0)
  return Calibration(
      lam=lam,
      lam_alt=lam_alt,
      mix=mix,
      target=jnp.asarray(target),
      cost=cost,
      mixed_cost=(1 - mix) * cost + mix * cost_alt,
      quality=qual,
      mixed_quality=(1 - mix) * qual + mix * qual_alt,
      best_quality=best,
      reached=reached,
      kind=kind,
  )


_STATIC = ('kind', 'realised')
_calibrate = jax.jit(_calibrate_one, static_argnames=_STATIC)
# Many targets at once: one vmap, one compile (targets are the last arg).
_calibrate_many = jax.jit(
    lambda *args, kind, realised: jax.vmap(
        functools.partial(_calibrate_one, kind=kind, realised=realised),
        in_axes=(None,) * (len(args) - 1) + (0,),
    )(*args),
    static_argnames=_STATIC,
)


def _inputs(router, emb_qd, quality_qm, label_mask_qm, pool):
  """The arguments of ``_calibrate`` before the target, and ``realised``."""
  emb = router_lib.check_embeddings(router, emb_qd)
  pool_m = router_lib.pool_mask(router, pool)
  _, gamma_qm, _ = router_lib.route_arrays(
      router, pool_m, emb, jnp.zeros((), jnp.float32)
  )
  shape = gamma_qm.shape
  realised = quality_qm is not None
  if realised:
    q = np.asarray(quality_qm, np.float32)
    if q.shape != shape:
      raise ValueError(f'quality_qm: expected shape {shape}, got {q.shape}.')
    mask = (
        np.ones(shape, bool)
        if label_mask_qm is None
        else np.asarray(label_mask_qm, bool)
    )
    if mask.shape != shape:
      raise ValueError(f'label_mask_qm: expected {shape}, got {mask.shape}.')
    quality = jnp.asarray(np.where(mask, q, 0.0))
  else:
    quality, mask = jnp.zeros(shape, jnp.float32), np.ones(shape, bool)
  bp_p, noise_p = _breakpoints(router, gamma_qm, pool_m)
  args = (gamma_qm, router.cost_m, pool_m, quality, jnp.asarray(mask))
  args += (bp_p, noise_p)
  return args, realised


# The most breakpoints a soft map's calibration lists (prompts x m x m);
# beyond, the cost weights stay where the bisection left them.
_MAX_BREAKPOINTS = 1 << 23


def _breakpoints(router, gamma_qm, pool_m):
  """Breakpoints of the lines of every distinct ``gamma`` row: the
  clusters' ``psi`` under K-means, every prompt's ``gamma`` otherwise."""
  if maps.kind_of(maps.of(router)) == 'kmeans':
    return breakpoints.breakpoints(
        router.psi_km, router.cluster_mask_k, router.cost_m, pool_m
    )
  q, m = gamma_qm.shape
  if q * m * m > _MAX_BREAKPOINTS:
    return jnp.full((1,), jnp.inf), jnp.zeros((1,))
  return breakpoints.breakpoints(
      gamma_qm, jnp.ones((q,), bool), router.cost_m, pool_m
  )


def calibrate_lambda(
    router: Router,
    emb_qd,
    *,
    target_cost: float | None = None,
    target_quality_share: float | None = None,
    quality_qm=None,
    label_mask_qm=None,
    pool: Sequence[str] | None = None,
) -> Calibration:
  """The cost weight meeting a target on held-out prompts.

  Args:
    router: the router.
    emb_qd: ``[q, d]`` embeddings of held-out (calibration) prompts.
    target_cost: target mean cost per query; ``lam`` lies in the lowest
      step of cost weights whose mean routed cost is at most this.
    target_quality_share: target share (0, 1] of the best single LLM's mean
      quality; ``lam`` lies in the highest step reaching it.
    quality_qm: optional ``[q, m]`` true labels of the router's LLMs on these
      prompts; when given, quality is realised, else estimated (1 - gamma).
    label_mask_qm: optional ``[q, m]`` True where ``quality_qm`` is labelled.
    pool: optional LLM names to route among.

  Returns:
    A :class:`Calibration` (``.report()`` gives target vs achieved).
  """
  if (target_cost is None) == (target_quality_share is None):
    raise ValueError(
        'target_cost/target_quality_share: expected exactly one of them.'
    )
  if target_cost is not None:
    kind, target = 'cost', float(target_cost)
    if not (np.isfinite(target) and target >= 0):
      raise ValueError(f'target_cost: expected >= 0, got {target_cost!r}.')
  else:
    kind, target = 'quality_share', float(target_quality_share)
    if not 0 < target <= 1:
      raise ValueError(
          f'target_quality_share: expected a value in (0, 1], got {target!r}.'
      )
  args, realised = _inputs(router, emb_qd, quality_qm, label_mask_qm, pool)
  return _calibrate(
      *args,
      jnp.asarray(target, jnp.float32),
      kind=kind,
      realised=realised,
  )


def calibrate_budgets(
    router: Router,
    emb_qd,
    budgets,
    *,
    pool: Sequence[str] | None = None,
) -> Calibration:
  """:func:`calibrate_lambda` at every target mean cost of ``budgets``.

  Args:
    router: the router.
    emb_qd: ``[q, d]`` embeddings of held-out (calibration) prompts.
    budgets: ``[b]`` target mean costs per query (finite, >= 0).
    pool: optional LLM names to route among.

  Returns:
    A :class:`Calibration` whose fields are ``[b]`` (one vmapped, jitted
    call); ``jax.tree.map(lambda x: x[i], calib)`` is the ``i``-th.
  """
  b = np.asarray(budgets, np.float32)
  if b.ndim != 1 or b.size == 0 or not np.isfinite(b).all() or (b < 0).any():
    raise ValueError(
        'budgets: expected a non-empty list of finite costs >= 0, got '
        f'{budgets!r}.'
    )
  args, _ = _inputs(router, emb_qd, None, None, pool)
  return _calibrate_many(*args, jnp.asarray(b), kind='cost', realised=False)


def route_calibrated(
    router: Router,
    emb_qd,
    calib: Calibration,
    *,
    key=None,
    pool: Sequence[str] | None = None,
) -> RouteOutput:
  """Routes with a calibrated cost weight.

  With ``key``, each prompt uses ``calib.lam_alt`` with probability
  ``calib.mix`` (randomised mixing; ``RouteOutput.lam`` is then ``[q]``);
  without, every prompt uses ``calib.lam``.
  """
  emb = router_lib.check_embeddings(router, emb_qd)
  pool_m = router_lib.pool_mask(router, pool)
  if key is None:
    return router_lib.route_output(
        router, pool_m, emb, jnp.asarray(calib.lam, jnp.float32)
    )
  alt_q = jax.random.uniform(key, (emb.shape[0],)) < calib.mix
  lam_q = jnp.where(alt_q, calib.lam_alt, calib.lam).astype(jnp.float32)
  return router_lib.route_output(router, pool_m, emb, lam_q)


def route_budget(
    router: Router,
    emb_qd,
    budget: float,
    *,
    key=None,
    pool: Sequence[str] | None = None,
) -> RouteOutput:
  """Routes a batch at a target mean cost per query ``budget``.

  A cost weight of the lowest step of cost weights whose mean routed cost
  on this batch is at most ``budget`` (:func:`calibrate_lambda`); with ``key``, the two cost weights
  around the budget are mixed at random so the expected mean cost equals it
  (``RouteOutput.lam`` is then ``[q]``). To reuse one lambda across batches,
  calibrate on held-out prompts (:mod:`unirouter_jax.deploy.heldout`, what
  ``unirouter route --budget`` does) and route with ``route(..., lam=)``.
  """
  calib = calibrate_lambda(router, emb_qd, target_cost=budget, pool=pool)
  return route_calibrated(router, emb_qd, calib, key=key, pool=pool)


@functools.partial(jax.jit, static_argnames=('num_lambdas',))
def _shrinkage_areas(router, emb_qd, ev: EvalSet, strength_s, num_lambdas):
  clustering = router.clustering
  cmap = maps.of(router)
  feats = psi.llm_features(
      maps.psi_weights(cmap, clustering, router.probe_emb_pd),
      router.probe_error_pm,
      router.probe_visible_pm,
      cluster_mask_k=clustering.cluster_mask_k,
  )
  pool_m = jnp.ones((router.probe_error_pm.shape[1],), bool)
  lam_l = routing.lambda_grid(num_lambdas)
  grid_g = jnp.linspace(0.0, 1.0, 101)

  def area(s):
    gamma_qm, _ = maps.gamma(cmap, clustering, psi.shrunk_psi(feats, s), emb_qd)
    return curves.curve_from_gamma(
        gamma_qm, pool_m, router.cost_m, ev, lam_l, grid_g
    ).area

  return jax.vmap(area)(strength_s)


DEFAULT_STRENGTHS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def select_shrinkage(
    router: Router,
    emb_qd,
    quality_qm,
    label_mask_qm=None,
    cost_qm=None,
    *,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    num_lambdas: int = 100,
) -> tuple[float, np.ndarray]:
  """The shrinkage pseudo-count with the largest Area on held-out prompts.

  Args:
    router: a router whose probe labels cover its LLMs.
    emb_qd: ``[q, d]`` held-out prompts (not in the probe set).
    quality_qm: ``[q, m]`` their labels for the router's LLMs.
    label_mask_qm: optional ``[q, m]`` True where labelled.
    cost_qm: optional ``[q, m]`` realised costs (default: ``router.cost_m``).
    strengths: candidate pseudo-counts (>= 0).
    num_lambdas: size of the cost-weight grid of each curve.

  Returns:
    ``(best strength, [s] Area of every candidate)``; ties go to the first.
  """
  emb = router_lib.check_embeddings(router, emb_qd)
  q = np.asarray(quality_qm, np.float32)
  shape = (emb.shape[0], router.num_llms)
  if q.shape != shape:
    raise ValueError(f'quality_qm: expected shape {shape}, got {q.shape}.')
  mask = (
      np.ones(shape, bool)
      if label_mask_qm is None
      else np.asarray(label_mask_qm, bool)
  )
  cost = (
      np.broadcast_to(np.asarray(router.cost_m), shape)
      if cost_qm is None
      else np.asarray(cost_qm, np.float32)
  )
  s = np.asarray(strengths, np.float32)
  if s.ndim != 1 or s.size == 0 or (s < 0).any() or not np.isfinite(s).all():
    raise ValueError(f'strengths: expected finite values >= 0, got {s}.')
  ev = curves.eval_set(
      jnp.asarray(q),
      jnp.asarray(mask),
      jnp.asarray(cost),
      jnp.ones((router.num_llms,), bool),
  )
  area_s = np.asarray(
      _shrinkage_areas(
          # Static metadata out of the jit key: one compile per shape.
          router.replace(
              llm_names=(),
              probe_ids=(),
              probe_texts=(),
              encoder_id='',
              encoder_hash='',
          ),
          emb,
          ev,
          jnp.asarray(s),
          num_lambdas,
      )
  )
  return float(s[int(np.argmax(area_s))]), area_s
