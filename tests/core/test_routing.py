"""Tests of unirouter_jax.core.routing."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.core.curves import scale_lambdas
from unirouter_jax.core.routing import (
    lambda_grid,
    route_grid,
    uniroute_gamma,
)
from unirouter_jax.core.routing import plugin_route as route


class RoutingTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(jax.numpy_rank_promotion('raise'))
    rng = np.random.default_rng(0)
    self.gamma = rng.random((50, 6)).astype(np.float32)
    self.cost = np.array([1.0, 3.0, 0.5, 10.0, 2.0, 7.0], np.float32)
    self.pool = np.array([1, 1, 0, 1, 1, 1], bool)

  def test_gamma_is_matmul(self):
    rng = np.random.default_rng(1)
    phi, psi = rng.random((7, 4)), rng.random((4, 3))
    np.testing.assert_allclose(
        uniroute_gamma(phi.astype(np.float32), psi.astype(np.float32)),
        phi @ psi,
        atol=1e-5,
    )

  def test_lambda_zero_picks_lowest_error_in_pool(self):
    got = route(self.gamma, self.cost, 0.0, self.pool)
    want = np.argmin(np.where(self.pool, self.gamma, np.inf), axis=1)
    np.testing.assert_array_equal(got, want)
    self.assertEqual(got.dtype, jnp.int32)

  @parameterized.parameters(False, True)
  def test_cost_non_increasing_in_lambda(self, per_prompt):
    lam = scale_lambdas(lambda_grid(50), self.cost, self.pool)
    cost = np.tile(self.cost, (50, 1)) if per_prompt else self.cost
    choice = np.asarray(route_grid(self.gamma, cost, lam, self.pool))
    routed = self.cost[choice].mean(1)
    self.assertTrue(np.all(np.diff(routed) <= 1e-6), routed)  # tol 1e-6
    self.assertTrue(self.pool[choice].all())
    # The largest lambda sends everything to the cheapest pool LLM.
    np.testing.assert_array_equal(choice[-1], 0)

  def test_route_grid_equals_loop(self):
    lam = jnp.array([0.0, 0.01, 0.1, 1.0])
    grid = route_grid(self.gamma, self.cost, lam, self.pool)
    for i, lam_i in enumerate(lam):
      np.testing.assert_array_equal(
          grid[i], route(self.gamma, self.cost, lam_i, self.pool)
      )

  def test_ties_go_to_lowest_index(self):
    gamma = np.zeros((3, 4), np.float32)
    got = route(
        gamma, np.zeros(4, np.float32), 1.0, np.array([0, 1, 1, 1], bool)
    )
    np.testing.assert_array_equal(got, [1, 1, 1])

  def test_empty_pool_and_inf_rows_are_finite(self):
    empty = np.zeros(6, bool)
    got = route(self.gamma, self.cost, 1.0, empty)
    np.testing.assert_array_equal(got, 0)
    gamma = self.gamma.copy()
    gamma[3] = np.inf
    got = route(gamma, self.cost, 0.5, self.pool)
    self.assertTrue(0 <= int(got[3]) < 6)
    lam = scale_lambdas(lambda_grid(10), self.cost, empty)
    self.assertTrue(np.isfinite(np.asarray(lam)).all())

  def test_lambda_grid(self):
    lam = np.asarray(lambda_grid(5, 1e-2, 1e2))
    np.testing.assert_allclose(
        lam,
        [0.0, 1e-2, 1e-2 * 10 ** (4 / 3), 1e2 * 10 ** (-4 / 3), 1e2],
        rtol=1e-6,
    )
    self.assertLen(lambda_grid(), 200)

  def test_scale_lambdas_by_pool_range(self):
    lam = scale_lambdas(jnp.array([0.0, 2.0]), self.cost, self.pool)
    np.testing.assert_allclose(lam, [0.0, 2.0 / 9.0], rtol=1e-6)

  @parameterized.parameters(
      dict(kw=dict(lo=-1.0), match='lo'),
      dict(kw=dict(lo=0.0), match='lo'),
      dict(kw=dict(lo=1.0, hi=0.5), match='hi'),
      dict(kw=dict(num=1), match='num'),
  )
  def test_bad_grid_raises(self, kw, match):
    with self.assertRaisesRegex(ValueError, match):
      lambda_grid(**kw)


if __name__ == '__main__':
  absltest.main()
