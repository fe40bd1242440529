"""The user-facing UniRoute router: a frozen pytree and pure functions.

A :class:`Router` holds everything needed to route a prompt among a set of
LLMs and to onboard a new LLM without retraining (method.md 2.1):

* the prompt side: K-means ``centroids_kd`` fitted on training prompts and
  a cluster map ``Phi`` (``router.cluster_map``: ``'kmeans'``, ``'soft'``
  or ``'learned'``, :mod:`unirouter_jax.deploy.cluster_map`), so that
  ``gamma(x, m) = Phi(x)^T psi[:, m]``;
* the **probe set**: the representative prompts (ids, texts, embeddings)
  that every LLM is labelled on, with the labels of every LLM
  (``probe_error_pm``, ``probe_visible_pm``);
* the LLM side derived from the probe labels: ``psi_km`` (per-cluster mean
  error, optionally shrunk toward the LLM's global error), ``count_km``,
  ``se_km`` and ``global_m``; costs ``cost_m`` and names.

Adding an LLM needs only its labels on the probe prompts: :func:`add_llm`
appends a column and recomputes the (cheap) tables, so the result equals a
router fitted with that LLM from the start (K-means uses no labels; a
learned map is fitted on the fitting LLMs only, ``fit_router(map_llms=)``).
:func:`fit_router` and :func:`from_clustering` live in
:mod:`unirouter_jax.deploy.fitting`.

Every function returns a new router and leaves its input unchanged; bad input
raises ``ValueError`` naming the argument.

**[project choice]** standard errors. ``se_km`` is the standard error of the
cluster mean with one pseudo-observation of a fair coin (mean 0.5, second
moment 0.5) added: ``v = (sum_sq + .5) / (c + 1) - ((sum + .5) / (c + 1))^2``
and ``se = sqrt(v / (c + 1))``. It is 0.5 for an empty cluster and stays
positive when every probe label in a cluster agrees.

**[project choice]** shrinkage. ``psi_km = (c psi_raw + s g) / (c + s)`` with
``s = router.shrinkage`` pseudo-prompts at the LLM's global error ``g``
(:func:`unirouter_jax.core.psi.shrunk_psi`); ``s = 0`` is the paper's rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from unirouter_jax.core.structs import RouteOutput
from unirouter_jax.deploy import cluster_map as maps
from unirouter_jax.deploy import rule
from unirouter_jax.deploy import state as router_state
from unirouter_jax.deploy.fitting import fit_router, from_clustering

Array = jax.Array
Router = router_state.Router

__all__ = (
    'RouteOutput',
    'Router',
    'add_llm',
    'cluster_table',
    'fit_router',
    'from_clustering',
    'probe_labels_array',
    'remove_llm',
    'route',
    'route_arrays',
    'route_output',
    'set_cost',
    'set_shrinkage',
)


def probe_labels_array(router: Router, probe_labels, *, allow_missing=False):
  """``([p] error, [p] visible)`` from labels keyed by probe id, or ``[p]``.

  Args:
    router: the router whose probe set the labels refer to.
    probe_labels: ``{probe_id: quality}`` or a length-``p`` sequence in probe
      order (NaN = missing).
    allow_missing: accept labels for only part of the probe set.

  Raises:
    ValueError: on unknown or missing ids, or values outside [0, 1].
  """
  p = len(router.probe_ids)
  if isinstance(probe_labels, Mapping):
    index = {pid: i for i, pid in enumerate(router.probe_ids)}
    unknown = [str(x) for x in probe_labels if str(x) not in index]
    if unknown:
      raise ValueError(
          f'probe_labels: {len(unknown)} unknown probe ids, e.g. '
          f'{unknown[:5]} (see `unirouter probe-set`).'
      )
    q = np.full((p,), np.nan, np.float64)
    for pid, v in probe_labels.items():
      try:
        q[index[str(pid)]] = float(v)
      except (TypeError, ValueError) as e:
        raise ValueError(
            f'probe_labels: probe id {pid!r}: expected a number, got {v!r}.'
        ) from e
  else:
    q = np.asarray(probe_labels, np.float64)
    if q.shape != (p,):
      raise ValueError(f'probe_labels: expected {p} values, got {q.shape}.')
  visible = ~np.isnan(q)
  bad = np.flatnonzero(visible & ((q < 0) | (q > 1) | ~np.isfinite(q)))
  if bad.size:
    i = bad[0]
    raise ValueError(
        f'probe_labels: expected quality in [0, 1], got {q[i]} for probe id '
        f'{router.probe_ids[i]!r} ({bad.size} bad values).'
    )
  if not allow_missing and not visible.all():
    missing = [router.probe_ids[i] for i in np.flatnonzero(~visible)]
    raise ValueError(
        f'probe_labels: missing {len(missing)} of {p} probe ids, e.g. '
        f'{missing[:5]} (pass allow_missing=True to accept partial labels).'
    )
  if not visible.any():
    raise ValueError('probe_labels: expected at least one label.')
  return np.where(visible, 1.0 - q, 0.0).astype(np.float32), visible


def add_llm(
    router: Router,
    name: str,
    cost: float,
    probe_labels,
    *,
    allow_missing: bool = False,
) -> Router:
  """A new router with one more LLM, from its labels on the probe set.

  No retraining: the clusters and the map are unchanged; ``psi`` of the new
  LLM is its (shrunk) mean error per cluster on the probe prompts, each
  weighted by the map's ``psi_weights`` (one-hot, or soft k-means
  responsibilities).

  Args:
    router: the router (unchanged).
    name: the new LLM's name (must not exist yet).
    cost: its cost per query (finite, >= 0).
    probe_labels: ``{probe_id: quality}`` or ``[p]`` qualities in [0, 1].
    allow_missing: accept labels for part of the probe set.
  """
  names = router_state.check_names((*router.llm_names, name), 'name')
  c = router_state.check_cost(cost, 'cost')
  if c.shape != ():
    raise ValueError(f'cost: expected a scalar, got shape {c.shape}.')
  err_p, vis_p = probe_labels_array(
      router, probe_labels, allow_missing=allow_missing
  )
  return router_state.rebuild(
      router,
      probe_error_pm=jnp.concatenate(
          [router.probe_error_pm, jnp.asarray(err_p)[:, None]], axis=1
      ),
      probe_visible_pm=jnp.concatenate(
          [router.probe_visible_pm, jnp.asarray(vis_p)[:, None]], axis=1
      ),
      cost_m=jnp.concatenate([router.cost_m, jnp.asarray(c)[None]]),
      llm_names=names,
  )


def add_or_extend(
    router: Router, name: str, cost, probe_labels, *, allow_missing=False
) -> Router:
  """:func:`add_llm` for a new ``name`` (``cost`` required); for an LLM of
  the router, :func:`add_labels` (``cost`` None or its cost: change a cost
  with :func:`set_cost`). What ``unirouter add-llm`` does."""
  if name not in router.llm_names:
    if cost is None:
      raise ValueError(f'--cost: required for a new LLM ({name!r}).')
    return add_llm(
        router, name, cost, probe_labels, allow_missing=allow_missing
    )
  old = float(router.cost_m[router.llm_names.index(name)])
  if cost is not None and not np.isclose(float(cost), old, rtol=1e-6):
    raise ValueError(
        f'--cost {cost}: {name!r} already costs {old:.6g}; change a cost '
        'with set-cost.'
    )
  return add_labels(router, name, probe_labels)


def add_labels(router: Router, name: str, probe_labels) -> Router:
  """A new router whose LLM ``name`` has more probe labels (labels that
  arrive in batches: calling this with each batch after a partial
  ``add_llm`` equals one ``add_llm`` with the union).

  Args:
    router: the router (unchanged).
    name: an LLM of the router.
    probe_labels: ``{probe_id: quality}`` or ``[p]`` qualities (NaN =
      missing), for any part of the probe set.

  Raises:
    ValueError: for an unknown LLM, or a prompt already labelled with
      another quality (named).
  """
  if name not in router.llm_names:
    raise ValueError(f'name: no LLM {name!r} in the router.')
  j = router.llm_names.index(name)
  err_p, vis_p = probe_labels_array(router, probe_labels, allow_missing=True)
  old_err = np.asarray(router.probe_error_pm[:, j])
  old_vis = np.asarray(router.probe_visible_pm[:, j])
  clash = old_vis & vis_p & (old_err != err_p)
  if clash.any():
    ids = [router.probe_ids[i] for i in np.flatnonzero(clash)[:5]]
    raise ValueError(
        f'probe_labels: {int(clash.sum())} probe prompts already labelled '
        f'for {name!r} with another quality, e.g. {ids}.'
    )
  err = np.where(vis_p, err_p, old_err)
  return router_state.rebuild(
      router,
      probe_error_pm=router.probe_error_pm.at[:, j].set(err),
      probe_visible_pm=router.probe_visible_pm.at[:, j].set(old_vis | vis_p),
  )


def _index(router: Router, name: str) -> int:
  if name not in router.llm_names:
    raise ValueError(
        f'name: no LLM named {name!r}; the router has {list(router.llm_names)}.'
    )
  return router.llm_names.index(name)


def remove_llm(router: Router, name: str) -> Router:
  """A new router without the LLM ``name`` (at least one must remain)."""
  i = _index(router, name)
  if router.num_llms == 1:
    raise ValueError(
        f"name: cannot remove {name!r}, the router's only LLM (a router "
        'needs at least one; add another LLM first).'
    )
  keep = np.asarray([j for j in range(router.num_llms) if j != i])
  return router_state.rebuild(
      router,
      probe_error_pm=router.probe_error_pm[:, keep],
      probe_visible_pm=router.probe_visible_pm[:, keep],
      cost_m=router.cost_m[keep],
      llm_names=tuple(router.llm_names[j] for j in keep),
  )


def set_cost(router: Router, name: str, cost: float) -> Router:
  """A new router where LLM ``name`` costs ``cost`` per query."""
  i = _index(router, name)
  c = router_state.check_cost(cost, 'cost')
  if c.shape != ():
    raise ValueError(f'cost: expected a scalar, got shape {c.shape}.')
  return router.replace(cost_m=router.cost_m.at[i].set(c))


def set_shrinkage(router: Router, shrinkage: float) -> Router:
  """A new router with the shrinkage pseudo-count ``shrinkage`` (>= 0)."""
  s = jnp.asarray(
      router_state.check_shrinkage(shrinkage), router.shrinkage.dtype
  )
  return router_state.rebuild(router, shrinkage=s)


def route_arrays(router: Router, pool_m: Array, emb_qd: Array, lam):
  """``(choice_q, gamma_qm, cluster_q)`` for validated inputs.

  ``lam`` is ``[]`` or ``[q]`` (per prompt, for randomised mixing); the
  jitted core (:func:`unirouter_jax.deploy.rule.route_arrays`) behind
  :func:`route` and the calibration functions.
  """
  return rule.route_arrays(
      router.centroids_kd,
      router.cluster_mask_k,
      router.psi_km,
      router.cost_m,
      pool_m,
      emb_qd,
      lam,
      maps.of(router),
  )


def pool_mask(router: Router, pool: Sequence[str] | None) -> Array:
  """``[m]`` bool mask of the LLM names in ``pool`` (None = every LLM).

  Raises ValueError for a router without LLMs (nothing to route to).
  """
  router_state.check_some_llms(
      router.num_llms, 'router', ' (add one with `unirouter add-llm`)'
  )
  if pool is None:
    return jnp.ones((router.num_llms,), bool)
  idx = [_index(router, n) for n in pool]
  if not idx:
    raise ValueError('pool: expected at least one LLM name.')
  return jnp.zeros((router.num_llms,), bool).at[jnp.asarray(idx)].set(True)


def check_embeddings(router: Router, emb_qd) -> Array:
  """``emb_qd`` as a float32 device array; ValueError on a bad shape."""
  emb = jnp.asarray(emb_qd, jnp.float32)
  d = router.centroids_kd.shape[1]
  if emb.ndim != 2 or emb.shape[1] != d or emb.shape[0] == 0:
    raise ValueError(
        f"emb_qd: expected a non-empty [q, {d}] array (the router's "
        f'encoder {router.encoder_id!r}), got shape {tuple(emb.shape)}.'
    )
  return emb


def route_output(
    router: Router, pool_m: Array, emb_qd: Array, lam
) -> RouteOutput:
  """The :class:`RouteOutput` of validated inputs (``lam`` ``[]`` or ``[q]``).

  The one builder of routing outputs (fixed and calibrated cost weights).
  """
  choice_q, gamma_qm, cluster_q = route_arrays(router, pool_m, emb_qd, lam)
  return RouteOutput(
      choice_q=choice_q,
      gamma_qm=gamma_qm,
      cost_m=router.cost_m,
      cluster_q=cluster_q,
      lam=lam,
      llm_names=router.llm_names,
  )


def route(
    router: Router,
    emb_qd,
    *,
    lam: float,
    pool: Sequence[str] | None = None,
) -> RouteOutput:
  """Routes prompts by ``argmin_m gamma(x, m) + lam * cost_m``.

  For a target mean cost instead of ``lam``, see
  :func:`unirouter_jax.deploy.calibration.route_budget`.

  Args:
    router: the router.
    emb_qd: ``[q, d]`` prompt embeddings from the router's encoder.
    lam: cost weight in raw cost units (error per unit of cost), >= 0.
    pool: optional LLM names to route among (default: all).

  Returns:
    A :class:`RouteOutput` with the choice, every candidate's estimated
    error and cost, and the prompt's cluster.
  """
  emb = check_embeddings(router, emb_qd)
  pool_m = pool_mask(router, pool)
  if lam is None or not (np.isfinite(lam) and lam >= 0):
    raise ValueError(f'lam: expected a finite value >= 0, got {lam!r}.')
  return route_output(router, pool_m, emb, jnp.asarray(lam, jnp.float32))


def cluster_table(router: Router) -> dict[str, np.ndarray]:
  """Host arrays of the real clusters: psi, raw mean, count, se per LLM."""
  real = np.asarray(router.cluster_mask_k)
  raw = router_state.tables_jit(
      maps.of(router),
      router.centroids_kd,
      router.cluster_mask_k,
      router.probe_emb_pd,
      router.probe_error_pm,
      router.probe_visible_pm,
      jnp.zeros(()),
  )[0]
  return {
      'psi_km': np.asarray(router.psi_km)[real],
      'raw_psi_km': np.asarray(raw)[real],
      'count_km': np.asarray(router.count_km)[real],
      'se_km': np.asarray(router.se_km)[real],
      'global_m': np.asarray(router.global_m),
  }
