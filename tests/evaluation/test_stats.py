"""Tests of unirouter_jax.evaluation.stats (host-side aggregation)."""

import math

import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.evaluation.stats import (
    area50,
    curve_area,
    mean_ci,
    mean_curve,
    qnc_of_mean_curve,
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


class MeanCurveQNCTest(parameterized.TestCase):
  """QNC of the mean curve on the relative-cost axis (issue: 6904%)."""

  def test_best_llm_reached_exactly_at_its_cost_is_100_percent(self):
    # Trial s: cheapest LLM (x = 0, q = .5) and the best LLM at x = 1 with
    # quality .9; its cost is c_max, and the curve reaches it only there.
    # The old reading (x off the normalised mean curve, then the mean of
    # c_max / best_cost) gave 100% only by luck of equal ranges; here the
    # best LLMs have very different cheap costs.
    kx = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    ky = np.array([[0.5, 0.9], [0.4, 0.8], [0.6, 0.95]])
    c_min = np.array([0.01, 1.0, 0.1])
    c_max = np.array([1.0, 100.0, 5.0])
    got = qnc_of_mean_curve(kx, ky, ky[:, 1], c_max, c_min, c_max, atol=0.0)
    self.assertAlmostEqual(got, 1.0, delta=1e-9)

  def test_within_the_range_of_per_trial_values(self):
    from unirouter_jax.core import curves  # noqa: PLC0415

    rng = np.random.default_rng(0)
    for _ in range(20):
      s = 6
      kxs, kys, qnc_s, bq, bc, lo, hi = [], [], [], [], [], [], []
      for _ in range(s):
        x = np.sort(rng.uniform(0, 1, 8))
        x[0] = 0.0
        y = np.sort(rng.uniform(0.3, 0.9, 8))
        c_min, c_max = rng.uniform(0.01, 1), rng.uniform(2, 50)
        best_q = float(rng.uniform(y[0], y[-1]))
        best_c = float(rng.uniform(c_min, c_max))
        m = curves.curve_metrics(
            x,
            y,
            np.ones(8, bool),
            best_quality=best_q,
            best_cost=best_c,
            c_min=c_min,
            c_max=c_max,
        )
        kxs.append(np.asarray(m.knot_x_p))
        kys.append(np.asarray(m.knot_y_p))
        qnc_s.append(float(m.qnc))
        bq.append(best_q)
        bc.append(best_c)
        lo.append(c_min)
        hi.append(c_max)
      got = qnc_of_mean_curve(kxs, kys, bq, bc, lo, hi)
      self.assertTrue(np.isfinite(qnc_s).all())
      # float32 knots: a relative tolerance of 1e-5.
      self.assertGreaterEqual(got, min(qnc_s) * (1 - 1e-5))
      self.assertLessEqual(got, max(qnc_s) * (1 + 1e-5))

  def test_never_reached_is_inf(self):
    kx = np.array([[0.0, 1.0]])
    ky = np.array([[0.5, 0.8]])
    got = qnc_of_mean_curve(kx, ky, [0.95], [1.0], [0.1], [1.0])
    self.assertEqual(got, math.inf)


if __name__ == '__main__':
  absltest.main()
