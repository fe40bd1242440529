"""Properties of the held-out-LLM protocol (method.md section 3)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from tests import synthetic
from unirouter_jax.estimators import builtin as methods
from unirouter_jax.estimators.base import Estimator
from unirouter_jax.evaluation import method_points, protocol

CFG = protocol.ProtocolConfig(
    num_trials=3, num_lambdas=200, grid_points=51, trial_batch_size=3
)
FAST = ('zero_router', 'knn', 'uniroute_kmeans')


def _estimators(names=FAST):
  every = methods.builtin_estimators(epochs_scale=0.2)
  return {name: every[name] for name in names}


def _slice(tree, lo, hi):
  return jax.tree.map(lambda x: x[lo:hi], tree)


class SplitTest(parameterized.TestCase):

  @parameterized.parameters(False, True)
  def test_splits_partition_prompts_and_llms(self, static_pool):
    cfg = dataclasses.replace(CFG, num_trials=4, static_pool=static_pool)
    splits = protocol.make_splits(jax.random.key(0), 50, 9, cfg)
    for s in range(4):
      idx = np.concatenate([
          np.asarray(splits.train_idx[s]),
          np.asarray(splits.val_idx[s]),
          np.asarray(splits.test_idx[s]),
      ])
      np.testing.assert_array_equal(np.sort(idx), np.arange(50))
      train = np.asarray(splits.train_llm_m[s])
      test = np.asarray(splits.test_llm_m[s])
      if static_pool:
        self.assertTrue(train.all() and test.all())
      else:
        self.assertEqual(test.sum(), 3)
        self.assertFalse((train & test).any())
        self.assertTrue((train | test).all())

  @parameterized.named_parameters(
      ('no_test_prompts', dict(train_fraction=0.9, val_fraction=0.1)),
      ('no_val_prompts', dict(val_fraction=0.001)),
      ('all_llms_test', dict(test_llm_fraction=0.99)),
      ('fraction_out_of_range', dict(train_fraction=1.5)),
      ('zero_trials', dict(num_trials=0)),
  )
  def test_bad_split_raises_naming_argument(self, overrides):
    cfg = dataclasses.replace(CFG, **overrides)
    with self.assertRaisesRegex(ValueError, 'fraction|num_trials'):
      protocol.split_sizes(40, 3, cfg)

  def test_one_test_llm_is_refused_with_the_numbers(self):
    # 4 LLMs with a third held out leaves one unseen LLM: every router
    # would route to it, so every curve would be the same.
    cfg = dataclasses.replace(CFG, test_llm_fraction=1 / 3)
    with self.assertRaisesRegex(
        ValueError,
        r'test_llm_fraction: 0.333\d* of 4 LLMs leaves 3 training and 1 test '
        'LLMs; at least 1 training and 2 test LLMs are needed',
    ):
      protocol.split_sizes(40, 4, cfg)
    with self.assertRaisesRegex(ValueError, 'static_pool: 1 LLM'):
      protocol.split_sizes(40, 1, dataclasses.replace(cfg, static_pool=True))

  def test_degenerate_selection_and_tiny_probe_sets_warn(self):
    data, _, _ = synthetic.cluster_routing_problem(0, n=300, m=3)
    ests = {'km': methods.uniroute_kmeans(), 'zr': methods.zero_router()}
    one_train = dataclasses.replace(CFG, test_llm_fraction=0.67)
    with self.assertWarnsRegex(
        UserWarning, 'km: 1 training LLM.*cannot rank its 6 hyperparameter'
    ):
      protocol.prepare(data, ests, one_train)
    data, _, _ = synthetic.cluster_routing_problem(0, n=300, m=4)
    tiny_probe = dataclasses.replace(
        CFG, test_llm_fraction=0.5, val_fraction=0.02  # 6 probe prompts
    )
    with self.assertWarnsRegex(
        UserWarning, 'km: K=8 clusters but a probe set of 6 prompts'
    ):
      protocol.prepare(data, ests, tiny_probe)


class NoTrainingLLMsTest(absltest.TestCase):
  """The Math+Code setting: every LLM unseen, none for training."""

  def setUp(self):
    super().setUp()
    self.cfg = dataclasses.replace(CFG, no_training_llms=True)

  def test_every_llm_is_a_test_llm_and_none_trains(self):
    splits = protocol.make_splits(jax.random.key(0), 60, 4, self.cfg)
    self.assertTrue(np.asarray(splits.test_llm_m).all())
    self.assertFalse(np.asarray(splits.train_llm_m).any())
    self.assertEqual(protocol.split_sizes(60, 4, self.cfg)[3], 4)
    with self.assertRaisesRegex(ValueError, 'no_training_llms: 1 LLM'):
      protocol.split_sizes(60, 1, self.cfg)
    with self.assertRaisesRegex(ValueError, 'choose one'):
      protocol.split_sizes(
          60, 4, dataclasses.replace(self.cfg, static_pool=True)
      )

  def test_fixed_points_replace_selection(self):
    data, _, _ = synthetic.cluster_routing_problem(0, n=400, m=4)
    est = _estimators(('zero_router', 'knn', 'uniroute_kmeans'))
    grids, pads = protocol.prepare(data, est, self.cfg)
    n_val = protocol.split_sizes(400, 4, self.cfg)[1]  # 40
    self.assertEqual(grids['knn']['k'].tolist(), [round(n_val**0.5)])
    self.assertEqual(grids['uniroute_kmeans']['k'].tolist(), [4])
    self.assertEqual(pads['knn'], 6)
    res = protocol.run_protocol(jax.random.key(1), data, est, self.cfg)
    for name in est:
      self.assertTrue(
          np.isfinite(np.asarray(res.methods[name].metrics.area)).all()
      )
      np.testing.assert_array_equal(res.methods[name].selected, 0)

  def test_methods_that_need_training_llms_or_selection_are_refused(self):
    data, _, _ = synthetic.cluster_routing_problem(0, n=400, m=4)
    learned = _estimators(('uniroute_learned_map',))
    with self.assertRaisesRegex(
        ValueError, 'uniroute_learned_map: needs training LLMs'
    ):
      protocol.prepare(data, learned, self.cfg)
    with self.assertRaisesRegex(
        ValueError, 'knn: 3 hyperparameter candidates, but with no_training'
    ):
      protocol.prepare(
          data, _estimators(('knn',)), self.cfg, {'knn': {'k': [3, 5, 7]}}
      )


class ProtocolTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.data, _, _ = synthetic.cluster_routing_problem(0, n=300, m=6)

  def test_vmapped_trials_equal_looped(self):
    key = jax.random.key(1)
    splits = protocol.make_splits(key, 300, 6, CFG)
    keys_all = protocol.run_protocol(
        key, self.data, _estimators(), CFG, splits=splits
    )
    for s in range(3):
      alone = protocol.run_protocol(
          key,
          self.data,
          _estimators(),
          dataclasses.replace(CFG, trial_batch_size=1),
          splits=_slice(splits, s, s + 1),
      )
      for name in FAST:
        got = alone.methods[name].metrics
        want = _slice(keys_all.methods[name].metrics, s, s + 1)
        # Trial keys differ between the two runs (split per call), but
        # these three methods use no randomness beyond k-means restarts,
        # which converge to the same blobs: compare at 1e-5.
        np.testing.assert_allclose(got.area, want.area, atol=1e-5)
        np.testing.assert_allclose(got.quality_g, want.quality_g, atol=1e-5)

  def test_fit_selected_only_is_the_full_grid_at_the_selected_point(self):
    lm = methods.uniroute_learned_map(arch='linear', epochs=1)
    self.assertTrue(lm.fit_selected_only)
    full = dataclasses.replace(lm, fit_selected_only=False)
    grids = {n: {'k': np.asarray([2, 3, 5])} for n in ('one', 'all')}
    res = protocol.run_protocol(
        jax.random.key(5), self.data, {'one': lm, 'all': full}, CFG, grids
    )
    one, every = res.methods['one'], res.methods['all']
    np.testing.assert_array_equal(one.selected, every.selected)
    np.testing.assert_array_equal(one.val_area_g, every.val_area_g)
    np.testing.assert_allclose(one.metrics.area, every.metrics.area, atol=1e-5)
    np.testing.assert_allclose(
        one.metrics.quality_g, every.metrics.quality_g, atol=1e-5
    )
    sel = np.asarray(one.selected)
    test_g = np.array(one.test_area_g)
    rows = np.arange(sel.size)
    np.testing.assert_allclose(
        test_g[rows, sel], np.asarray(every.test_area_g)[rows, sel], atol=1e-5
    )
    test_g[rows, sel] = np.nan
    self.assertTrue(np.isnan(test_g).all())  # the other candidates: unfitted

  def test_learned_map_with_kmeans_k_takes_its_clusters_and_choice(self):
    kmeans = methods.uniroute_kmeans()
    lm = methods.uniroute_learned_map(arch='linear', epochs=1, k_from='kmeans')
    self.assertIs(lm.selector, kmeans)
    self.assertIs(lm.fit.prompt_fit, kmeans.fit.prompt_fit)
    grids = {n: {'k': np.asarray([2, 3, 5])} for n in ('km', 'lm')}
    res = protocol.run_protocol(
        jax.random.key(6), self.data, {'km': kmeans, 'lm': lm}, CFG, grids
    )
    km, lmr = res.methods['km'], res.methods['lm']
    # The same selection view (computed once, shared) and the same K.
    np.testing.assert_array_equal(lmr.val_area_g, km.val_area_g)
    np.testing.assert_array_equal(lmr.selected, km.selected)
    self.assertTrue(np.isfinite(np.asarray(lmr.metrics.area)).all())
    # Alone, it selects the same K (the cache only shares work).
    alone = protocol.run_protocol(
        jax.random.key(6), self.data, {'lm': lm}, CFG, grids
    )
    np.testing.assert_array_equal(alone.methods['lm'].selected, km.selected)
    np.testing.assert_allclose(
        alone.methods['lm'].metrics.area, lmr.metrics.area, atol=1e-6
    )

  def test_learned_map_reuses_kmeans_clusters_of_a_larger_grid(self):
    # LearnedMap's K grid is a subset of K-means': each K is clustered once
    # per trial, whatever the order of the methods, and the results equal
    # LearnedMap run alone (which clusters itself, with the same key).
    kmeans = methods.uniroute_kmeans()
    lm = methods.uniroute_learned_map(arch='linear', epochs=1)
    self.assertIs(lm.fit.prompt_fit, kmeans.fit.prompt_fit)
    grids = {
        'lm': {'k': np.asarray([2, 5])},
        'km': {'k': np.asarray([2, 3, 5])},
    }
    key = jax.random.key(7)
    both = protocol.run_protocol(
        key, self.data, {'lm': lm, 'km': kmeans}, CFG, grids
    )
    alone = protocol.run_protocol(key, self.data, {'lm': lm}, CFG, grids)
    got, want = both.methods['lm'], alone.methods['lm']
    np.testing.assert_array_equal(got.selected, want.selected)
    np.testing.assert_allclose(got.val_area_g, want.val_area_g, atol=1e-5)
    np.testing.assert_allclose(got.metrics.area, want.metrics.area, atol=1e-5)
    cache = {}
    split = _slice(protocol.make_splits(key, 300, 6, CFG), 0, 1)
    split = jax.tree.map(lambda x: x[0], split)
    lam = jnp.asarray(np.linspace(0, 1, 5), jnp.float32)
    grid_g = jnp.linspace(0, 1, 11)
    for est, grid in ((kmeans, grids['km']), (lm, grids['lm'])):
      method_points.method_points(
          est, grid, 5, split.key, self.data, split, lam, None, grid_g,
          cache=cache,
      )  # fmt: skip
    prompt_keys = [k for k in cache if k[0][0] == 'prompt']
    self.assertLen(prompt_keys, 1)  # LearnedMap added no clustering

  def test_k1_uniroute_curve_equals_zero_router(self):
    grids = {'uniroute_kmeans': {'k': np.asarray([1])}}
    res = protocol.run_protocol(
        jax.random.key(2),
        self.data,
        _estimators(('zero_router', 'uniroute_kmeans')),
        CFG,
        grids=grids,
    )
    np.testing.assert_allclose(
        res.methods['uniroute_kmeans'].metrics.quality_g,
        res.methods['zero_router'].metrics.quality_g,
        atol=1e-5,
    )

  def test_selection_and_fair_methods_ignore_hidden_labels(self):
    key = jax.random.key(3)
    splits = protocol.make_splits(key, 300, 6, CFG)
    names = FAST + ('uniroute_soft_kmeans',)
    # Poison every label a fair method must not see in trial 0: the test
    # prompts (all LLMs) and the test LLMs on the training prompts.
    split0 = _slice(splits, 0, 1)
    n = self.data.num_prompts
    test_n = jnp.zeros((n,), bool).at[split0.test_idx[0]].set(True)
    train_n = jnp.zeros((n,), bool).at[split0.train_idx[0]].set(True)
    hidden = train_n[:, None] & split0.test_llm_m[0][None, :]
    rng = np.random.default_rng(0)
    noise = jnp.asarray(
        rng.uniform(size=self.data.quality_nm.shape), jnp.float32
    )
    poisoned = self.data.replace(
        quality_nm=jnp.where(hidden, noise, self.data.quality_nm)
    )
    # Test prompts are poisoned only for the selection check: they are the
    # evaluation data, so test metrics must change with them.
    poisoned_test = self.data.replace(
        quality_nm=jnp.where(
            test_n[:, None] | hidden, noise, self.data.quality_nm
        )
    )
    got = protocol.run_protocol(
        key, poisoned, _estimators(names), CFG, splits=split0
    )
    got_sel = protocol.run_protocol(
        key, poisoned_test, _estimators(names), CFG, splits=split0
    )
    base = protocol.run_protocol(
        key, self.data, _estimators(names), CFG, splits=split0
    )
    for name in names:
      np.testing.assert_allclose(
          got.methods[name].metrics.quality_g,
          base.methods[name].metrics.quality_g,
          atol=1e-6,
      )
      np.testing.assert_array_equal(
          got_sel.methods[name].selected, base.methods[name].selected
      )
      np.testing.assert_allclose(
          got_sel.methods[name].val_area_g,
          base.methods[name].val_area_g,
          atol=1e-6,
      )

  def test_compiles_once_across_chunks(self):
    traces = []
    base = methods.uniroute_kmeans()

    def counting_fit(key, inputs, hp, pad):
      traces.append(1)
      return base.fit(key, inputs, hp, pad)

    est = {
        'counted': dataclasses.replace(base, name='counted', fit=counting_fit)
    }
    cfg = dataclasses.replace(CFG, num_trials=4, trial_batch_size=2)
    splits = protocol.make_splits(jax.random.key(0), 300, 6, cfg)
    protocol.run_protocol(
        jax.random.key(0), self.data, est, cfg, splits=_slice(splits, 0, 2)
    )
    first = len(traces)
    self.assertGreater(first, 0)
    protocol.run_protocol(
        jax.random.key(1), self.data, est, cfg, splits=_slice(splits, 2, 4)
    )
    self.assertEqual(len(traces), first)

  def test_missing_labels_and_per_prompt_costs_give_finite_metrics(self):
    data, _, _ = synthetic.cluster_routing_problem(
        4, n=300, m=6, per_prompt_cost=True, missing_rate=0.3
    )
    res = protocol.run_protocol(jax.random.key(4), data, _estimators(), CFG)
    for name in FAST:
      m = res.methods[name].metrics
      self.assertTrue(np.isfinite(np.asarray(m.area)).all(), name)
      self.assertTrue(np.isfinite(np.asarray(m.quality_g)).all(), name)
      self.assertTrue(np.all(np.asarray(m.area) <= 1.0 + 1e-6), name)

  def test_uniroute_beats_zero_router_on_clustered_data(self):
    data, _, _ = synthetic.cluster_routing_problem(
        5, n=300, m=6, k=6, specialists=True
    )
    res = protocol.run_protocol(jax.random.key(5), data, _estimators(), CFG)
    uni = np.asarray(res.methods['uniroute_kmeans'].metrics.area)
    zero = np.asarray(res.methods['zero_router'].metrics.area)
    oracle = np.asarray(res.oracle.area)
    # Each LLM is the specialist of its own blob, so routing each blob to its
    # specialist gains 0.05-0.08 Area over any single LLM; require 0.03 in every
    # trial. It cannot beat the per-prompt oracle (tolerance 1e-6).
    self.assertTrue(np.all(uni > zero + 0.03), (uni, zero))
    self.assertTrue(np.all(uni <= oracle + 1e-6), (uni, oracle))

  def test_bad_inputs_raise(self):
    with self.assertRaisesRegex(ValueError, 'estimators'):
      protocol.run_protocol(jax.random.key(0), self.data, {}, CFG)
    with self.assertRaisesRegex(ValueError, 'training prompts'):
      protocol.run_protocol(
          jax.random.key(0),
          self.data,
          _estimators(('uniroute_kmeans',)),
          CFG,
          grids={'uniroute_kmeans': {'k': np.asarray([3, 1000])}},
      )

  def test_toy_estimator_through_public_interface(self):
    # A router that ignores the prompt and trusts the cheapest LLM least.
    def fit(key, inputs, hp, pad):
      del key, hp, pad
      return inputs.cost_m

    def gamma(params, emb_qd, inputs, pad):
      del inputs, pad
      score_m = 1.0 - params / jnp.max(params)
      return jnp.broadcast_to(score_m, (emb_qd.shape[0], params.shape[0]))

    toy = Estimator(name='toy', fit=fit, gamma=gamma, hp_grid=lambda nt, nv: {})
    res = protocol.run_protocol(jax.random.key(6), self.data, {'toy': toy}, CFG)
    self.assertEqual(res.methods['toy'].metrics.area.shape, (3,))
    self.assertTrue(
        np.isfinite(np.asarray(res.methods['toy'].metrics.area)).all()
    )


class SplitsTest(absltest.TestCase):

  def test_splits_do_not_depend_on_the_chunking(self):
    key = jax.random.key(3)
    full = protocol.make_splits(
        key, 60, 6, protocol.ProtocolConfig(num_trials=6)
    )
    part = protocol.make_splits(
        key, 60, 6, protocol.ProtocolConfig(num_trials=2), start=3
    )
    for f in ('train_idx', 'val_idx', 'test_idx', 'test_llm_m'):
      np.testing.assert_array_equal(
          np.asarray(getattr(full, f))[3:5], np.asarray(getattr(part, f))
      )


class SignTestsInSummaryTest(absltest.TestCase):

  def test_area50_and_qnc_are_sign_tested_qnc_lower_is_better(self):
    from unirouter_jax.core.structs import CurveMetrics  # noqa: PLC0415
    from unirouter_jax.evaluation import summary  # noqa: PLC0415

    def curve(area, qnc):
      s = len(area)
      return CurveMetrics(
          quality_g=np.tile(np.linspace(0.5, 0.8, 11), (s, 1)),
          area=np.asarray(area),
          area50=np.asarray(area) / 2,
          qnc=np.asarray(qnc),
          peak=np.full(s, 0.8),
          knot_x_p=np.tile([0.0, 1.0], (s, 1)),
          knot_y_p=np.tile([0.5, 0.8], (s, 1)),
      )

    trial = {
        'best_quality': np.full(4, 0.8),
        'best_cost': np.ones(4),
        'c_min': np.full(4, 0.1),
        'c_max': np.ones(4),
    }
    out = summary.summarise_curves(
        {
            'uniroute_kmeans': curve([0.7] * 4, [1.0] * 4),
            'other': curve([0.6] * 4, [0.5] * 4),
        },
        np.linspace(0, 1, 11),
        trial,
    )
    tests = out['other']['sign_tests_vs_uniroute_kmeans']
    self.assertEqual((tests['area']['wins'], tests['area']['losses']), (0, 4))
    self.assertEqual(
        (tests['area50']['wins'], tests['area50']['losses']), (0, 4)
    )
    # Lower QNC is better: 'other' wins every trial on QNC.
    self.assertEqual((tests['qnc']['wins'], tests['qnc']['losses']), (4, 0))


if __name__ == '__main__':
  absltest.main()
