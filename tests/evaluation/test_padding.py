"""Padded runs (one program for several N_val) equal the unpadded ones."""

import dataclasses

import jax
import numpy as np
from absl.testing import absltest

from tests import synthetic
from unirouter_jax.estimators import builtin as methods
from unirouter_jax.evaluation import padding, protocol, sweep, views

CFG = protocol.ProtocolConfig(
    num_trials=4, num_lambdas=200, grid_points=51, trial_batch_size=2
)
# Fractions whose grids differ (K-NN's k grid grows with N_val).
FRACTIONS = (0.1, 0.25)
NAMES = ('zero_router', 'knn', 'uniroute_kmeans')
# Trained methods: compared at the first fraction only (compile time).
TRAINED = ('knn', 'uniroute_learned_map_kmeans_k', 'mlp_oracle')


def _estimators(names=NAMES):
  every = methods.builtin_estimators(epochs_scale=0.1)
  return {name: every[name] for name in names}


def _data():
  data, _, _ = synthetic.cluster_routing_problem(
      3, n=240, m=7, per_prompt_cost=True, missing_rate=0.1
  )
  return data


class PaddedRunTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data = _data()
    cls.est = _estimators()
    cls.configs = [dataclasses.replace(CFG, val_fraction=f) for f in FRACTIONS]
    cls.shared = protocol.common_padding(cls.data, cls.est, cls.configs)

  def test_padding_covers_every_run(self):
    n_vals = [protocol.split_sizes(240, 7, c)[1] for c in self.configs]
    self.assertEqual(self.shared.val_prompts, max(n_vals))
    knn = self.shared.shape('knn')
    grids = [methods.knn_k_grid(144, v) for v in n_vals]
    self.assertEqual(knn.points, max(len(g) for g in grids))
    self.assertEqual(knn.pad, max(g.max() for g in grids))
    self.assertNotEqual(len(grids[0]), len(grids[1]))  # a real padding

  def _assert_equal_to_unpadded(self, est, configs):
    shared = protocol.common_padding(self.data, est, self.configs)
    key = jax.random.key(5)
    for config in configs:
      plain = protocol.run_protocol(key, self.data, est, config)
      padded = protocol.run_protocol(
          key,
          self.data,
          est,
          dataclasses.replace(config, padding=shared),
      )
      for name in est:
        a, b = plain.methods[name], padded.methods[name]
        with self.subTest(method=name, val_fraction=config.val_fraction):
          np.testing.assert_array_equal(a.selected, b.selected)
          np.testing.assert_allclose(
              a.metrics.area, b.metrics.area, rtol=0, atol=2e-5
          )
          np.testing.assert_allclose(
              a.metrics.qnc, b.metrics.qnc, rtol=1e-4, atol=1e-5
          )
          self.assertEqual(a.val_area_g.shape, b.val_area_g.shape)
          np.testing.assert_allclose(
              a.val_area_g, b.val_area_g, rtol=0, atol=2e-5
          )
          np.testing.assert_allclose(
              a.test_area_g, b.test_area_g, rtol=0, atol=2e-5
          )
      np.testing.assert_array_equal(plain.num_eval, padded.num_eval)
      np.testing.assert_allclose(
          plain.oracle.area, padded.oracle.area, rtol=0, atol=2e-5
      )

  def test_trial_by_trial_equal_to_unpadded(self):
    self._assert_equal_to_unpadded(self.est, self.configs)

  def test_trained_methods_equal_to_unpadded(self):
    self._assert_equal_to_unpadded(_estimators(TRAINED), self.configs[:1])

  def test_one_compiled_program_for_every_n_val(self):
    est = _estimators(('zero_router', 'knn'))
    shared = protocol.common_padding(self.data, est, self.configs)
    before = sweep.compiled_programs()
    for config in self.configs:
      prog = sweep.prepare_sweep(
          jax.random.key(0),
          self.data,
          est,
          dataclasses.replace(config, padding=shared),
      )
      prog.compile()
    self.assertEqual(sweep.compiled_programs() - before, 1)
    # Without padding an N_val is a program of its own.
    sweep.prepare_sweep(
        jax.random.key(0), self.data, est, self.configs[0]
    ).compile()
    self.assertEqual(sweep.compiled_programs() - before, 2)


class PadSplitsTest(absltest.TestCase):

  def test_padding_entries_are_hidden_and_unscored(self):
    data = _data()
    config = dataclasses.replace(CFG, val_fraction=0.1)
    est = _estimators(('knn',))
    big = dataclasses.replace(CFG, val_fraction=0.3)
    shared = protocol.common_padding(data, est, [config, big])
    grids, _ = protocol.prepare(data, est, config)
    splits = protocol.make_splits(jax.random.key(1), 240, 7, config)
    padded = padding.pad_splits(splits, grids, shared)
    n_val = splits.val_idx.shape[1]
    self.assertEqual(padded.val_idx.shape[1], shared.val_prompts)
    for s in range(config.num_trials):
      split = jax.tree.map(lambda x, s=s: x[s], padded)
      inputs = views.trial_inputs(data, split)
      extra = np.asarray(split.val_idx)[n_val:]
      self.assertFalse(np.asarray(inputs.visible_nm)[extra].any())
      # Padding of the probe set comes from the test prompts, never seen.
      self.assertTrue(
          set(extra.tolist()) <= set(np.asarray(splits.test_idx[s]).tolist())
      )
      ev = views.test_set(data, split)
      n_test = splits.test_idx.shape[1]
      self.assertFalse(np.asarray(ev.weight_q)[n_test:].any())
      np.testing.assert_allclose(
          views.mean_cost(data.cost_nm, split.val_idx, split.val_mask),
          views.mean_cost(data.cost_nm, splits.val_idx[s]),
          rtol=1e-6,
      )
      valid = np.asarray(split.hp_grids['knn'][padding.VALID])
      np.testing.assert_array_equal(
          np.asarray(split.hp_grids['knn']['k'])[valid], grids['knn']['k']
      )

  def test_a_run_outside_the_padding_is_refused(self):
    data = _data()
    est = _estimators(('knn',))
    small = dataclasses.replace(CFG, val_fraction=0.1)
    shared = protocol.common_padding(data, est, [small])
    big = dataclasses.replace(CFG, val_fraction=0.3, padding=shared)
    with self.assertRaisesRegex(ValueError, 'validation prompts'):
      protocol.prepare(data, est, big)

  def test_runs_with_other_hyperparameters_are_refused(self):
    with self.assertRaisesRegex(ValueError, 'same hyperparameters'):
      padding.covering([
          ({'a': {'k': np.asarray([1])}}, {'a': 1}, 5, 5),
          ({'a': {'beta': np.asarray([1.0])}}, {'a': 1}, 5, 5),
      ])


if __name__ == '__main__':
  absltest.main()
