"""The sharded one-program sweep: compiles once, equals a looped run."""

import dataclasses
import os

import jax
import numpy as np
from absl.testing import absltest

from tests import synthetic
from unirouter_jax.estimators import builtin as methods
from unirouter_jax.estimators.base import TwoStageFit
from unirouter_jax.evaluation import protocol, sweep

# Small shapes keep each compile short: 2 Ks, 20 lambdas, 11 grid points.
CFG = protocol.ProtocolConfig(
    num_trials=3, num_lambdas=20, grid_points=11, trial_batch_size=3
)
GRIDS = {'uniroute_kmeans': {'k': np.array([2, 4])}}
ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def _estimators(counter=None):
  est = methods.uniroute_kmeans(n_init=2)
  if counter is not None:
    prompt_fit = est.fit.prompt_fit

    def counting(key, inputs, hp, pad):
      counter.append(1)  # Runs once per trace, never per call.
      return prompt_fit(key, inputs, hp, pad)

    est = dataclasses.replace(est, fit=TwoStageFit(counting, est.fit.llm_fit))
  return {'uniroute_kmeans': est}


def _slice(tree, lo, hi):
  return jax.tree.map(lambda x: x[lo:hi], tree)


class SweepTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.data, _, _ = synthetic.cluster_routing_problem(0, n=120, m=6)

  def test_full_sweep_compiles_once(self):
    traces = []
    est = _estimators(traces)
    cfg = dataclasses.replace(CFG, num_trials=4, trial_batch_size=2)
    a = sweep.run_sweep(jax.random.key(0), self.data, est, cfg, GRIDS)
    jax.block_until_ready(a)
    first = len(traces)
    self.assertGreater(first, 0)
    # New key, new splits, several lax.map chunks: no new trace.
    b = sweep.run_sweep(jax.random.key(1), self.data, est, cfg, GRIDS)
    jax.block_until_ready(b)
    self.assertEqual(len(traces), first)

  def test_vmapped_trials_equal_looped(self):
    key = jax.random.key(2)
    est = _estimators()
    splits = protocol.make_splits(key, 120, 6, CFG)
    batched = sweep.run_sweep(key, self.data, est, CFG, GRIDS, splits)
    one_cfg = dataclasses.replace(CFG, num_trials=1, trial_batch_size=1)
    for s in range(CFG.num_trials):
      alone = protocol.run_protocol(
          key, self.data, est, one_cfg, GRIDS, splits=_slice(splits, s, s + 1)
      )
      got, want = (
          batched.methods['uniroute_kmeans'],
          alone.methods['uniroute_kmeans'],
      )
      # Batched and unbatched Lloyd steps sum in different orders (one-hot
      # product vs segment sum): equal to float32 rounding.
      np.testing.assert_allclose(
          got.test_area_g[s], want.test_area_g[0], atol=1e-5
      )
      np.testing.assert_allclose(
          got.val_area_g[s], want.val_area_g[0], atol=1e-5
      )
      self.assertEqual(int(got.selected[s]), int(want.selected[0]))
      np.testing.assert_allclose(
          batched.oracle.area[s], alone.oracle.area[0], atol=1e-6
      )

  def test_tuned_config_and_bad_mesh(self):
    cpu = sweep.tuned_config(CFG, 'cpu')
    self.assertEqual((cpu.trial_batch_size, cpu.grid_batch_size), (8, None))
    gpu = sweep.tuned_config(CFG, 'gpu')
    self.assertEqual((gpu.trial_batch_size, gpu.grid_batch_size), (3, None))
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ('x',))
    with self.assertRaisesRegex(ValueError, 'mesh'):
      sweep.run_sweep(
          jax.random.key(0), self.data, _estimators(), CFG, GRIDS, mesh=mesh
      )


if __name__ == '__main__':
  absltest.main()
