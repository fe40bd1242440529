"""One method's curve inputs in one trial, and its hyperparameter selection.

:func:`method_points` fits a method over its hyperparameter grid in the
selection view (training LLMs, ``psi`` from the training prompts, the
validation prompts routed) and the test view (``psi`` from the probe set,
the test prompts routed among the test LLMs), and returns the curve inputs
of both; :func:`method_result` keeps the grid point of largest validation
Area (method.md 2.4). :func:`select_hparams` is that rule alone, the one
the deployable router uses too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from unirouter_jax.core import batching, curves, routing
from unirouter_jax.core.structs import MethodResult, RoutingData, Split
from unirouter_jax.estimators.base import Estimator, TwoStageFit
from unirouter_jax.evaluation.views import (
    selection_inputs,
    test_set,
    trial_inputs,
    val_set,
)

Array = jax.Array


def map_grid(fn, grid, batch_size):
  """``fn`` over the grid's leading axis: ``vmap``, or ``lax.map`` in chunks
  of ``batch_size`` (one K at a time on CPU: no padding of every K to the
  batch's slowest convergence)."""
  return batching.map_even(fn, grid, batch_size)


def grid_size(grid) -> int:
  """Points of a hyperparameter grid (1 for an empty grid)."""
  return len(next(iter(grid.values()))) if grid else 1


def _grid_rows(frozen) -> tuple[dict, tuple]:
  """``({point: row}, names)`` of a frozen grid (``point``: its values)."""
  names, values = zip(*frozen, strict=True) if frozen else ((), ())
  rows = enumerate(zip(*values, strict=True))
  return {point: i for i, point in rows}, names


def _cached_rows(cache, tag, frozen):
  """The rows of a cached prompt side whose grid holds every point of
  ``frozen`` (same hyperparameter names and pad), or None."""
  points, names = _grid_rows(frozen[0])
  if not points:
    return None
  for (cached_tag, (cached_grid, cached_pad)), value in cache.items():
    if cached_tag != tag or cached_pad != frozen[1]:
      continue
    rows, cached_names = _grid_rows(cached_grid)
    if cached_names == names and all(p in rows for p in points):
      idx = jnp.asarray([rows[p] for p in points], jnp.int32)
      return jax.tree.map(lambda x, i=idx: x[i], value)
  return None


def method_points(
    est: Estimator,
    grid,
    pad,
    key,
    data,
    split,
    lam_l,
    gbs,
    grid_g,
    test_view=True,
    cache=None,
    *,
    valid=None,
    shared_key=None,
):
  """Curve inputs of one method: ``[G]`` test view, ``[G]`` selection view.

  The selection view is absent (None) when the grid has one point, the test
  view when ``test_view`` is False (K selection alone). With a
  ``TwoStageFit``, the prompt side (K-means on the training prompts, the same
  in both views) is fitted once per grid point and shared by the views. With
  ``fit_selected_only`` the test view has one point, the method fitted at
  the selected grid point; with a ``selector``, also, the selection view is
  the selector's.

  ``cache`` (a dict, one per trial) shares what methods of the trial have in
  common: the prompt side of equal ``prompt_fit`` on equal grids, or on a
  grid holding every point of this one (UniRoute K-means and LearnedMap
  cluster once per K), and a selector's selection view.

  A padded trial (``evaluation.padding``) passes its grid as traced values
  with ``valid`` (``[G]`` bool, the real points) and ``shared_key`` (what
  identifies the grid across methods, in place of its values).
  """
  cache = {} if cache is None else cache
  inputs = trial_inputs(data, split, clairvoyant=est.clairvoyant)
  ev = test_set(data, split)
  if shared_key is None:
    frozen = (
        tuple((k, tuple(np.asarray(v).tolist())) for k, v in grid.items()),
        pad,
    )
  else:
    frozen = (('_padded', shared_key), pad)
  grid = {k: jnp.asarray(v) for k, v in grid.items()}
  size = grid_size(grid)
  if not grid:
    grid = {'_unit': jnp.zeros((1,))}  # one point with a unit grid axis

  def memo(tag, fn):
    if (tag, frozen) not in cache:
      cache[tag, frozen] = fn()
    return cache[tag, frozen]

  def hp_of(g):
    return {k: v for k, v in g.items() if k != '_unit'}

  def points(e, hp, prompt, view, ev, emb_q):
    if prompt is None:
      params = e.fit(key, view, hp, pad)
    else:
      params = e.fit.llm_fit(prompt, key, view, hp, pad)
    if e.points is not None:
      pts = e.points(params, view, ev, pad)
      return curves.curve_inputs(*pts, view.pool_m, ev)
    gamma = e.gamma(params, emb_q, view, pad)
    cost_l, quality_l = curves.rule_points(
        gamma, view.pool_m, view.cost_m, ev, lam_l
    )
    return curves.curve_inputs(cost_l, quality_l, True, view.pool_m, ev)

  def prompt_side(e):
    if not isinstance(e.fit, TwoStageFit):
      return None
    fit = e.fit.prompt_fit
    if shared_key is None and (('prompt', fit), frozen) not in cache:
      # Not computed yet: computed on a grid that holds every point?
      shared = _cached_rows(cache, ('prompt', fit), frozen)
      if shared is not None:
        return shared
    return memo(
        ('prompt', fit),
        lambda: map_grid(lambda g: fit(key, inputs, hp_of(g), pad), grid, gbs),
    )

  def over_grid(e, view, ev, emb_q):
    prompt_g = prompt_side(e)
    if prompt_g is None:
      return map_grid(
          lambda g: points(e, hp_of(g), None, view, ev, emb_q), grid, gbs
      )
    return jax.vmap(lambda g, pr: points(e, hp_of(g), pr, view, ev, emb_q))(
        grid, prompt_g
    )

  sel = est.selector or est
  val_g = None
  if size > 1:
    val_g = memo(
        ('val', sel),
        lambda: over_grid(
            sel,
            selection_inputs(data, split),
            val_set(data, split),
            data.emb_nd[split.val_idx],
        ),
    )
  if not test_view:
    return None, val_g
  emb_test = data.emb_nd[split.test_idx]
  if val_g is None or not (est.fit_selected_only or est.selector):
    return over_grid(est, inputs, ev, emb_test), val_g
  area_g = jax.vmap(lambda kw: curves.curve_metrics(grid_g=grid_g, **kw).area)(
      val_g
  )
  best = best_point(area_g, valid)
  prompt_g = prompt_side(est)
  prompt = (
      None if prompt_g is None else jax.tree.map(lambda x: x[best], prompt_g)
  )
  hp = hp_of({k: v[best] for k, v in grid.items()})
  test = points(est, hp, prompt, inputs, ev, emb_test)
  return jax.tree.map(lambda x: x[None], test), val_g


def best_point(area_g, valid=None):
  """Index of the largest Area (the first on ties) among the ``valid``
  points (all when None)."""
  if valid is not None:
    area_g = jnp.where(valid, area_g, -jnp.inf)
  return jnp.argmax(area_g)


def method_result(test_g, val_g, valid=None) -> MethodResult:
  """Selects the grid point of largest validation Area (method.md 2.4).

  A test view of one point beside a larger selection view was fitted at the
  selected point only (a ``selector``): its other test Areas are NaN.
  ``valid`` (``[G]`` bool) marks the real points of a padded grid.
  """
  if val_g is None:
    val_area = jnp.zeros(test_g.area.shape, test_g.area.dtype)
    best = jnp.asarray(0)
  else:
    val_area = val_g.area
    best = best_point(val_area, valid)
  if test_g.area.shape == val_area.shape:
    metrics, test_area = jax.tree.map(lambda x: x[best], test_g), test_g.area
  else:
    metrics = jax.tree.map(lambda x: x[0], test_g)
    test_area = jnp.full(val_area.shape, jnp.nan, val_area.dtype)
    test_area = test_area.at[best].set(metrics.area)
  return MethodResult(
      metrics=metrics,
      selected=best,
      test_area_g=test_area,
      val_area_g=val_area,
  )


def select_hparams(
    key: Array,
    data: RoutingData,
    split: Split,
    est: Estimator,
    grid: Mapping[str, np.ndarray],
    *,
    num_lambdas: int = 200,
    grid_points: int = 101,
) -> tuple[int, np.ndarray]:
  """The grid point of largest selection-view Area (method.md 2.4).

  The one K-selection rule of the package (the protocol and the deployable
  router's ``fit_from_dataset``): the prompt side on ``split.train_idx``,
  ``psi`` of the training LLMs from the training prompts, the validation
  prompts routed among the training LLMs.

  Returns:
    ``(index of the selected point, [G] validation Area)``.
  """
  grid = {k: np.atleast_1d(np.asarray(v)) for k, v in grid.items()}
  frozen = tuple((k, tuple(v.tolist())) for k, v in grid.items())
  fn = _selection_program(est, frozen, est.pad(grid), num_lambdas, grid_points)
  area_g = np.asarray(fn(key, data, split))
  return int(np.argmax(area_g)), area_g


@functools.lru_cache(maxsize=8)
def _selection_program(est, frozen_grid, pad, num_lambdas, grid_points):
  grid = {k: np.asarray(v) for k, v in frozen_grid}
  lam_l = routing.lambda_grid(num_lambdas)
  grid_g = jnp.linspace(0.0, 1.0, grid_points)

  @jax.jit
  def run(key, data, split):
    n = next(iter(grid.values())).shape[0]
    if n == 1:
      return jnp.zeros((1,))
    _, val_g = method_points(
        est, grid, pad, key, data, split, lam_l, None, grid_g, test_view=False
    )
    return jax.vmap(lambda kw: curves.curve_metrics(grid_g=grid_g, **kw).area)(
        val_g
    )

  return run
