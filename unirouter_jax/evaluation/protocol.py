"""The held-out-LLM evaluation protocol (method.md section 3), as one program.

One trial is a seeded random split of the LLMs into a training and a test
pool, and of the prompts into train / validation / test sets. Every method
routes the test prompts among the test LLMs only; hyperparameters (K, k) are
chosen per trial with training LLMs only (method.md 2.4):

* **Selection view**: the prompt side is fitted on the training prompts,
  ``psi`` of each training LLM comes from the *training* set, and the
  validation prompts are routed among the training LLMs; the candidate with
  the largest validation Area wins.
* **Test view**: the prompt side is fitted on the training prompts, ``psi``
  of every LLM comes from the validation prompts (the probe set), and the
  test prompts are routed among the test LLMs.

Splits are fixed-size index arrays, so trials stack on a leading ``s`` axis
and the whole protocol is one jitted function mapped over trials
(``lax.map`` in chunks of ``trial_batch_size``); the embedding matrix is
never copied per trial. [project choice] When a test prompt lacks a label
for some pool LLM, the evaluation routes it among the labelled pool LLMs
only; a prompt with none is left out of the means.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from unirouter_jax.core import batching, curves, routing
from unirouter_jax.core.structs import (
    RoutingData,
    Split,
    TrialResult,
)
from unirouter_jax.estimators import baselines
from unirouter_jax.estimators.base import Estimator, TwoStageFit
from unirouter_jax.evaluation import method_points, views
from unirouter_jax.evaluation import padding as padding_lib

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
  """Static settings of the protocol (method.md section 3 defaults).

  Attributes:
    num_trials: random splits (paper: 400).
    test_llm_fraction: share of LLMs held out as unseen test LLMs.
    train_fraction: share of prompts used to fit the prompt side.
    val_fraction: share of prompts in the probe (validation) set.
    static_pool: train and test pools are all LLMs (method.md section 4).
    no_training_llms: every LLM is an unseen test LLM and none is a
      training LLM (the paper's Math+Code setting, method.md section 4):
      hyperparameters cannot be selected, so each method runs at its
      ``Estimator.fixed_grid`` (K-NN: k = sqrt(N_val)); methods that need
      training LLMs (LearnedMap) are refused.
    num_lambdas: size of the cost-weight grid.
    grid_points: size of the common normalised-cost grid.
    trial_batch_size: trials evaluated together (``lax.map`` batch size).
    grid_batch_size: hyperparameter grid points whose prompt side (K-means)
      is fitted together: None vmaps the whole grid (accelerators); 1 fits
      one K at a time, each stopping at its own convergence (fastest on
      CPU, see ``sweep.cpu_config``).
    padding: optional static shapes shared with other runs (one compiled
      program for several ``val_fraction`` s; ``evaluation.padding``, and
      :func:`common_padding` to make one).
  """

  num_trials: int = 400
  test_llm_fraction: float = 1 / 3
  train_fraction: float = 0.6
  val_fraction: float = 0.1
  static_pool: bool = False
  no_training_llms: bool = False
  num_lambdas: int = 200
  grid_points: int = 101
  trial_batch_size: int = 8
  grid_batch_size: int | None = None
  padding: padding_lib.Padding | None = None


# Below these a trial says nothing (docs: README "Minimums"): routing among
# one test LLM is that LLM; a selection view of one training LLM cannot rank
# hyperparameters (the first candidate wins every tie).
MIN_TEST_LLMS = 2
MIN_SELECTION_LLMS = 2


def split_sizes(n: int, m: int, config: ProtocolConfig):
  """``(n_train, n_val, n_test, m_test)``; ValueError if a split is empty."""
  for name in ('train_fraction', 'val_fraction', 'test_llm_fraction'):
    value = getattr(config, name)
    if not 0.0 < value < 1.0:
      raise ValueError(f'{name}: expected a fraction in (0, 1), got {value}.')
  if config.num_trials < 1:
    raise ValueError(f'num_trials: expected >= 1, got {config.num_trials}.')
  n_train = int(round(config.train_fraction * n))
  n_val = int(round(config.val_fraction * n))
  n_test = n - n_train - n_val
  for name, size in (('train', n_train), ('val', n_val), ('test', n_test)):
    if size < 1:
      raise ValueError(
          f'train_fraction/val_fraction: the {name} split of {n} prompts is '
          f'empty (train {n_train}, val {n_val}, test {n_test}).'
      )
  if config.static_pool and config.no_training_llms:
    raise ValueError(
        'static_pool, no_training_llms: choose one (a static pool trains on '
        'every LLM; no_training_llms on none).'
    )
  if config.static_pool or config.no_training_llms:
    if m < MIN_TEST_LLMS:
      name = 'static_pool' if config.static_pool else 'no_training_llms'
      raise ValueError(
          f'{name}: {m} LLM(s); routing needs at least {MIN_TEST_LLMS}.'
      )
    return n_train, n_val, n_test, m
  m_test = int(round(config.test_llm_fraction * m))
  if m_test < MIN_TEST_LLMS or m_test >= m:
    raise ValueError(
        f'test_llm_fraction: {config.test_llm_fraction} of {m} LLMs leaves '
        f'{m - m_test} training and {m_test} test LLMs; at least 1 training '
        f'and {MIN_TEST_LLMS} test LLMs are needed (with one test LLM every '
        'router routes to it: all curves are equal).'
    )
  return n_train, n_val, n_test, m_test


def make_splits(
    key: Array, n: int, m: int, config: ProtocolConfig, start: int = 0
) -> Split:
  """Trials ``start .. start + num_trials - 1``, stacked on an ``s`` axis.

  Trial ``i`` comes from ``fold_in(key, i)``: the same seed gives the same
  splits however the trials are chunked or batched.
  """
  n_train, n_val, _, m_test = split_sizes(n, m, config)

  def one(i):
    p_key, m_key, _ = jax.random.split(jax.random.fold_in(key, i), 3)
    perm_n = jax.random.permutation(p_key, n)
    if config.static_pool:
      train_llm = jnp.ones((m,), bool)
      test_llm = train_llm
    elif config.no_training_llms:
      train_llm = jnp.zeros((m,), bool)
      test_llm = ~train_llm
    else:
      rank_m = jnp.argsort(jax.random.permutation(m_key, m))
      test_llm = rank_m < m_test
      train_llm = ~test_llm
    return Split(
        train_idx=perm_n[:n_train],
        val_idx=perm_n[n_train : n_train + n_val],
        test_idx=perm_n[n_train + n_val :],
        train_llm_m=train_llm,
        test_llm_m=test_llm,
        key=trial_keys(key, i)[0],
    )

  return jax.vmap(one)(jnp.arange(start, start + config.num_trials))


def trial_keys(key: Array, idx_s) -> Array:
  """``[s]`` the estimators' PRNG keys of trials ``idx_s`` (k-means++,
  minibatches): a function of the run's key and the trial index only, so
  splits given from a file run with the keys the run that wrote them had.
  """
  return jax.vmap(lambda i: jax.random.split(jax.random.fold_in(key, i), 3)[2])(
      jnp.atleast_1d(idx_s)
  )


def _rows(lo, hi, x):
  return x[lo:hi]


def _trial(
    split, data, estimators, grids, pads, lam_l, grid_g, gbs=None, keys=None
) -> TrialResult:
  ev = views.test_set(data, split)
  # Padded trials (``keys``: method -> grid key) carry their grids.
  keys = dict(keys or {})
  valid = {}
  if keys:
    grids = dict(grids)
    for name in estimators:
      grids[name], valid[name] = padding_lib.grid_of(split, name)
  # Every method gets the trial's key: cluster-based methods with the same K
  # then share one clustering (paired comparisons), and adding a method
  # leaves the others' results unchanged.
  # Larger grids first, so that a method whose K grid is a subset of
  # another's (LearnedMap's of K-means') finds that clustering cached.
  cache = {}
  order = sorted(
      estimators, key=lambda name: -method_points.grid_size(grids[name])
  )
  computed = {
      name: method_points.method_points(
          estimators[name],
          grids[name],
          pads[name],
          split.key,
          data,
          split,
          lam_l,
          gbs,
          grid_g,
          cache=cache,
          valid=valid.get(name),
          shared_key=keys.get(name),
      )
      for name in order
  }
  pending = {name: computed[name] for name in estimators}
  oracle_gamma = baselines.oracle_gamma(ev.quality_qm, ev.label_mask_qm)
  rule_cost = views.mean_cost(data.cost_nm, split.val_idx, split.val_mask)
  cost_l, quality_l = curves.rule_points(
      oracle_gamma, split.test_llm_m, rule_cost, ev, lam_l
  )
  oracle_in = jax.tree.map(
      lambda x: x[None],
      curves.curve_inputs(cost_l, quality_l, True, split.test_llm_m, ev),
  )
  # Every curve of the trial (each method's views and the oracle) goes
  # through one vmapped curve_metrics per point count: one hull to compile.
  parts = [('oracle', oracle_in)] + [
      ((name, view), curve_in)
      for name, (test_g, val_g) in pending.items()
      for view, curve_in in (('test', test_g), ('val', val_g))
      if curve_in is not None
  ]
  by_p = {}
  for tag, curve_in in parts:
    by_p.setdefault(curve_in['x_p'].shape[-1], []).append((tag, curve_in))
  by_tag = {}
  for group in by_p.values():
    stacked = jax.tree.map(
        lambda *xs: jnp.concatenate(xs), *[c for _, c in group]
    )
    out = jax.vmap(lambda kw: curves.curve_metrics(grid_g=grid_g, **kw))(
        stacked
    )
    sizes = np.asarray([c['x_p'].shape[0] for _, c in group])
    ends = np.cumsum(sizes)
    for (tag, _), lo, hi in zip(group, ends - sizes, ends, strict=True):
      by_tag[tag] = jax.tree.map(functools.partial(_rows, lo, hi), out)
  methods = {
      name: method_points.method_result(
          by_tag[(name, 'test')], by_tag.get((name, 'val')), valid.get(name)
      )
      for name in estimators
  }
  oracle = jax.tree.map(lambda x: x[0], by_tag['oracle'])
  pool = curves.pool_summary(ev, split.test_llm_m)
  return TrialResult(
      methods=methods,
      oracle=oracle,
      num_eval=jnp.sum(ev.weight_q).astype(jnp.int32),
      single_x_m=curves.normalise_cost(
          pool['cost_m'], pool['c_min'], pool['c_max']
      ),
      single_quality_m=pool['quality_m'],
      test_llm_m=split.test_llm_m,
      best_quality=pool['best_quality'],
      best_cost=pool['best_cost'],
      c_min=pool['c_min'],
      c_max=pool['c_max'],
  )


def prepare(
    data: RoutingData,
    estimators: Mapping[str, Estimator],
    config: ProtocolConfig,
    grids: Mapping[str, Mapping[str, np.ndarray]] | None = None,
):
  """Validates inputs; returns the hyperparameter grids and pads per method."""
  if not estimators:
    raise ValueError('estimators: expected at least one method, got none.')
  n, m = data.num_prompts, data.num_llms
  n_train, n_val, n_test, m_test = split_sizes(n, m, config)
  m_train = m if config.static_pool else m - m_test
  grids = dict(grids or {})
  out_grids, pads = {}, {}
  for name, est in estimators.items():
    if m_train == 0 and est.needs_training_llms:
      raise ValueError(
          f'{name}: needs training LLMs, and no_training_llms leaves none '
          '(drop it from the methods).'
      )
    if name in grids:
      grid = {k: np.atleast_1d(np.asarray(v)) for k, v in grids[name].items()}
    elif m_train == 0:
      grid = est.grid(n_train, n_val, fixed=True)
    else:
      grid = est.grid(n_train, n_val)
    if m_train == 0 and method_points.grid_size(grid) > 1:
      raise ValueError(
          f'{name}: {method_points.grid_size(grid)} hyperparameter '
          'candidates, but with no_training_llms none can be selected; give '
          'one (e.g. --kmeans-k 8 / --knn-k 10).'
      )
    pad = est.pad(grid)
    if est.pad_key is not None and pad > n_train:
      raise ValueError(
          f'{name}: {est.pad_key}={pad} is larger than the number of '
          f'training prompts ({n_train}).'
      )
    out_grids[name], pads[name] = grid, pad
    size = method_points.grid_size(grid)
    if size > 1 and m_train < MIN_SELECTION_LLMS:
      warnings.warn(
          f'{name}: {m_train} training LLM(s): the selection view cannot '
          f'rank its {size} hyperparameter candidates (every tie goes to '
          f'the first); at least {MIN_SELECTION_LLMS} are needed '
          '(test_llm_fraction, or fixed grids).',
          stacklevel=2,
      )
    if isinstance(est.fit, TwoStageFit) and pad > n_val:
      warnings.warn(
          f'{name}: K={pad} clusters but a probe set of {n_val} prompts: '
          "some clusters get no probe prompt and use each LLM's global "
          'error (val_fraction, or smaller K).',
          stacklevel=2,
      )
  if config.padding is not None:
    pads = padding_lib.check(config.padding, out_grids, pads, n_val, n_test)
  return out_grids, pads


def common_padding(
    data: RoutingData,
    estimators: Mapping[str, Estimator],
    configs: Sequence[ProtocolConfig],
    grids: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> padding_lib.Padding:
  """A padding under which every config runs one compiled program.

  ``configs`` differ in their split fractions (a validation-size study);
  set the result as each one's ``padding``.
  """
  runs = []
  for config in configs:
    config = dataclasses.replace(config, padding=None)
    g, p = prepare(data, estimators, config, grids)
    _, n_val, n_test, _ = split_sizes(data.num_prompts, data.num_llms, config)
    runs.append((g, p, n_val, n_test))
  return padding_lib.covering(runs)


def padded_splits(splits: Split, grids, config: ProtocolConfig) -> Split:
  """``splits`` padded to ``config.padding`` (unchanged without one)."""
  if config.padding is None:
    return splits
  return padding_lib.pad_splits(splits, grids, config.padding)


def run_protocol(
    key: Array,
    data: RoutingData,
    estimators: Mapping[str, Estimator],
    config: ProtocolConfig = ProtocolConfig(),
    grids: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    splits: Split | None = None,
) -> TrialResult:
  """Runs every method over every trial in one compiled program.

  Args:
    key: PRNG key for the splits (each split carries its trial's key).
    data: the dataset on the device.
    estimators: method name -> :class:`Estimator`.
    config: protocol settings.
    grids: optional hyperparameter grids overriding each estimator's own.
    splits: optional precomputed splits (leading ``s`` axis).

  Returns:
    A :class:`TrialResult` whose arrays have a leading ``[s]`` trial axis.
  """
  grids, pads = prepare(data, estimators, config, grids)
  if splits is None:
    splits = make_splits(key, data.num_prompts, data.num_llms, config)
  num_trials = splits.train_idx.shape[0]
  fn = _compiled_protocol(
      *static_args(
          estimators,
          grids,
          pads,
          config,
          min(config.trial_batch_size, num_trials),
      )
  )
  out = fn(padded_splits(splits, grids, config), data)
  return out if config.padding is None else padding_lib.unpad(out, grids)


def static_args(estimators, grids, pads, config: ProtocolConfig, batch_size):
  """``protocol_fn``'s arguments, hashable: the compiled program's cache key.

  A padded config keys on its padding, not on the grids' values (which
  the splits then carry).
  """
  frozen_grids = tuple(
      (name, tuple((k, tuple(np.asarray(v).tolist())) for k, v in g.items()))
      for name, g in grids.items()
  )
  keys = None
  if config.padding is not None:
    shapes = [config.padding.shape(name) for name in grids]
    frozen_grids = tuple(
        (g.method, tuple((k, (0,) * g.points) for k in g.names)) for g in shapes
    )
    keys = tuple((g.method, g.key) for g in shapes)
  return (
      tuple(estimators.items()),
      frozen_grids,
      tuple(sorted(pads.items())),
      config.num_lambdas,
      config.grid_points,
      batch_size,
      config.grid_batch_size,
      keys,
  )


@functools.lru_cache(maxsize=32)
def _compiled_protocol(*static):
  """The jitted protocol (cached per static settings)."""
  return jax.jit(protocol_fn(*static))


def protocol_fn(
    estimators,
    grids,
    pads,
    num_lambdas,
    grid_points,
    batch_size,
    gbs=None,
    keys=None,
):
  """``run(splits, data) -> TrialResult``, not jitted (``sweep`` shards it).

  Arguments are hashable (tuples of items, see ``static_args``); ``keys``
  (method -> grid key) marks a padded program, whose grids come with the
  splits.
  """
  estimators = dict(estimators)
  grids = {name: {k: np.asarray(v) for k, v in g} for name, g in grids}
  pads = dict(pads)
  lam_l = routing.lambda_grid(num_lambdas)
  grid_g = jnp.linspace(0.0, 1.0, grid_points)

  def run(splits, data):
    def one(split):
      return _trial(
          split, data, estimators, grids, pads, lam_l, grid_g, gbs, keys
      )

    return batching.map_even(one, splits, batch_size)

  return run
