"""The estimator interface: soft k-means limit and an added estimator."""

import dataclasses

import jax
import numpy as np
from absl.testing import absltest

from examples import low_rank_uniroute
from tests import synthetic
from unirouter_jax.estimators import builtin as methods
from unirouter_jax.evaluation import protocol

CFG = protocol.ProtocolConfig(num_trials=2, grid_points=51, trial_batch_size=2)


class SoftKMeansTest(absltest.TestCase):

  def test_large_beta_equals_kmeans_router(self):
    data, _, _ = synthetic.cluster_routing_problem(1, n=300, m=6)
    every = methods.builtin_estimators()
    ests = {n: every[n] for n in ('uniroute_kmeans', 'uniroute_soft_kmeans')}
    grids = {
        'uniroute_kmeans': {'k': np.asarray([4])},
        'uniroute_soft_kmeans': {
            'k': np.asarray([4]),
            'beta': np.asarray([1e6], np.float32),
        },
    }
    res = protocol.run_protocol(jax.random.key(0), data, ests, CFG, grids)
    np.testing.assert_allclose(
        res.methods['uniroute_soft_kmeans'].metrics.quality_g,
        res.methods['uniroute_kmeans'].metrics.quality_g,
        atol=1e-5,
    )

  def test_small_beta_is_prompt_agnostic(self):
    # beta -> 0 gives uniform responsibilities: every prompt gets the same
    # gamma, so the curve is the ZeroRouter's (tolerance 1e-5).
    data, _, _ = synthetic.cluster_routing_problem(2, n=300, m=6)
    every = methods.builtin_estimators()
    ests = {n: every[n] for n in ('zero_router', 'uniroute_soft_kmeans')}
    grids = {
        'uniroute_soft_kmeans': {
            'k': np.asarray([4]),
            'beta': np.asarray([0.0], np.float32),
        }
    }
    res = protocol.run_protocol(jax.random.key(0), data, ests, CFG, grids)
    np.testing.assert_allclose(
        res.methods['uniroute_soft_kmeans'].metrics.quality_g,
        res.methods['zero_router'].metrics.quality_g,
        atol=1e-5,
    )


class AddedEstimatorTest(absltest.TestCase):

  def test_example_module_runs_full_protocol(self):
    data, _, _ = synthetic.cluster_routing_problem(3, n=300, m=6)
    est = low_rank_uniroute.estimator(rank=4, epochs=2)
    every = methods.builtin_estimators()
    ests = {'uniroute_kmeans': every['uniroute_kmeans'], est.name: est}
    res = protocol.run_protocol(
        jax.random.key(0), data, ests, dataclasses.replace(CFG, num_trials=2)
    )
    area = np.asarray(res.methods[est.name].metrics.area)
    self.assertEqual(area.shape, (2,))
    self.assertTrue(np.all((area > 0) & (area <= 1)))
    zero = np.asarray(res.oracle.area)
    self.assertTrue(np.all(area <= zero + 1e-6))


if __name__ == '__main__':
  absltest.main()
