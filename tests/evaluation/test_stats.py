"""Tests of unirouter_jax.evaluation.stats (host-side aggregation)."""

import math

import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.evaluation.stats import (
    area50,
    curve_area,
    mean_ci,
    mean_curve,
    qnc_from_mean_curve,
    sign_test,
    significant,
)


class StatsTest(parameterized.TestCase):

  @parameterized.parameters(
      dict(wins=10, losses=0, ties=3, p=2 / 1024),
      dict(wins=8, losses=2, ties=0, p=2 * 56 / 1024),
      dict(wins=5, losses=5, ties=1, p=1.0),
      dict(wins=5, losses=15, ties=0, p=2 * 21700 / 2**20),
      dict(wins=0, losses=0, ties=4, p=1.0),
  )
  def test_sign_test_known_binomial_values(self, wins, losses, ties, p):
    a = np.array([1.0] * wins + [0.0] * losses + [np.inf] * ties)
    b = np.array([0.0] * wins + [1.0] * losses + [np.inf] * ties)
    got = sign_test(a, b)
    self.assertEqual(got[:3], (wins, losses, ties))
    self.assertAlmostEqual(got[3], p, delta=1e-12)

  def test_sign_test_large_n_matches_exact_sum(self):
    a = np.array([1.0] * 600 + [0.0] * 400)
    want = 2 * sum(math.comb(1000, i) for i in range(401)) / 2**1000
    self.assertAlmostEqual(sign_test(a, 1 - a)[3] / want, 1.0, delta=1e-9)
    self.assertTrue(significant(sign_test(a, 1 - a)[3]))
    self.assertFalse(significant(0.02))

  def test_sign_test_bad_input(self):
    with self.assertRaisesRegex(ValueError, 'b_s'):
      sign_test([1.0, 2.0], [1.0])

  def test_mean_ci_normal(self):
    m = mean_ci([1.0, 2.0, 3.0])
    half = 1.959963984540054 / math.sqrt(3)
    np.testing.assert_allclose(
        tuple(m), (2.0, 2.0 - half, 2.0 + half), atol=1e-9
    )
    self.assertFalse(m.used_median)
    center, lo, hi = m
    self.assertEqual((center, lo, hi), (m.center, m.lo, m.hi))

  def test_mean_ci_with_inf_uses_median(self):
    v = np.concatenate([np.arange(1.0, 20.0), [np.inf]])
    m = mean_ci(v)
    self.assertTrue(m.used_median)
    self.assertEqual(m.center, 10.5)  # Median of 1..19, inf (exact).
    self.assertLessEqual(m.lo, m.center)
    self.assertLessEqual(m.center, m.hi)
    with self.assertRaisesRegex(ValueError, 'values_s'):
      mean_ci([1.0, np.nan])
    with self.assertRaisesRegex(ValueError, 'level'):
      mean_ci([1.0, 2.0], level=1.5)

  def test_mean_curve_area_and_qnc(self):
    grid = np.array([0.0, 0.5, 1.0])
    q = mean_curve(np.array([[0.4, 0.8, 0.9], [0.6, 0.8, 0.9]]))
    np.testing.assert_allclose(q, [0.5, 0.8, 0.9], atol=1e-12)
    self.assertAlmostEqual(curve_area(grid, q), 0.325 + 0.425, delta=1e-12)
    self.assertAlmostEqual(area50(grid, q), 0.325, delta=1e-12)
    # Reaches .85 at x = .75 -> mean((1 + 7.5) / 8, (1 + 15) / 16).
    got = qnc_from_mean_curve(
        grid, q, [0.84, 0.86], [8.0, 16.0], [1.0, 1.0], [11.0, 21.0], atol=0.0
    )
    self.assertAlmostEqual(got, (1.0625 + 1.0) / 2, delta=1e-9)
    never = qnc_from_mean_curve(grid, q, [0.95], [1.0], [0.0], [1.0])
    self.assertEqual(never, math.inf)


if __name__ == '__main__':
  absltest.main()
