"""Calibration of the cost weight and of the shrinkage strength."""

import jax
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.deploy import calibration
from unirouter_jax.deploy import router as router_lib


def _problem(seed=0, n=20_600, d=6, k=4, m=4, n_probe=300):
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(k, d)) * 5.0
  cluster_n = rng.integers(0, k, size=n)
  emb = (centres[cluster_n] + 0.2 * rng.normal(size=(n, d))).astype(np.float32)
  acc_km = rng.uniform(0.2, 0.95, size=(k, m))
  quality = (rng.uniform(size=(n, m)) < acc_km[cluster_n]).astype(np.float32)
  cost = np.asarray([1.0, 2.0, 4.0, 8.0], np.float32)
  router = router_lib.fit_router(
      jax.random.key(0),
      emb[:2000],
      quality[:2000],
      np.ones((2000, m), bool),
      cost,
      [f'llm{i}' for i in range(m)],
      train_idx=np.arange(n_probe, 2000),
      probe_idx=np.arange(n_probe),
      k=k,
  )
  return router, emb[2000:], quality[2000:]


class CalibrationTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.router, emb, q = _problem()
    cls.cal_emb, cls.cal_q = emb[:9300], q[:9300]
    cls.hold_emb, cls.hold_q = emb[9300:], q[9300:]

  @parameterized.parameters(1.3, 2.0, 3.0)
  def test_target_cost_within_2pct_on_held_out(self, target):
    calib = calibration.calibrate_lambda(
        self.router, self.cal_emb, target_cost=target
    )
    self.assertTrue(bool(calib.reached))
    rep = calib.report()
    self.assertAlmostEqual(rep['mixed_cost'], target, delta=1e-3 * target)
    self.assertLessEqual(rep['cost'], target + 1e-6)
    out = calibration.route_calibrated(
        self.router, self.hold_emb, calib, key=jax.random.key(1)
    )
    achieved = float(np.asarray(out.cost_m)[np.asarray(out.choice_q)].mean())
    self.assertLess(abs(achieved - target) / target, 0.02)  # the 2% bar

  def test_budget_route_matches_calibration(self):
    out = calibration.route_budget(self.router, self.hold_emb, 3.0)
    achieved = float(np.asarray(out.cost_m)[np.asarray(out.choice_q)].mean())
    self.assertLessEqual(achieved, 3.0 + 1e-6)
    mixed = calibration.route_budget(
        self.router, self.hold_emb, 3.0, key=jax.random.key(0)
    )
    mixed_cost = np.asarray(mixed.cost_m)[np.asarray(mixed.choice_q)].mean()
    self.assertAlmostEqual(float(mixed_cost), 3.0, delta=0.02 * 3.0)

  def test_unreachable_budget_reports_it(self):
    calib = calibration.calibrate_lambda(
        self.router, self.cal_emb, target_cost=0.5
    )
    self.assertFalse(bool(calib.reached))
    self.assertAlmostEqual(calib.report()['cost'], 1.0, places=5)

  @parameterized.parameters(True, False)
  def test_quality_share(self, realised):
    kw = dict(quality_qm=self.cal_q) if realised else {}
    calib = calibration.calibrate_lambda(
        self.router, self.cal_emb, target_quality_share=0.99, **kw
    )
    rep = calib.report()
    self.assertTrue(rep['reached'])
    self.assertGreaterEqual(rep['quality_share'], 0.99 - 1e-6)
    self.assertAlmostEqual(rep['mixed_quality_share'], 0.99, delta=2e-3)
    best_alone = self.cal_q.mean(0).max() if realised else None
    if realised:
      self.assertAlmostEqual(rep['best_quality'], best_alone, places=4)

  def test_mean_cost_non_increasing_in_lambda(self):
    costs = [
        float(
            np.asarray(self.router.cost_m)[
                np.asarray(
                    router_lib.route(
                        self.router, self.cal_emb, lam=lam
                    ).choice_q
                )
            ].mean()
        )
        for lam in (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
    ]
    self.assertTrue(
        all(a >= b - 1e-7 for a, b in zip(costs[:-1], costs[1:], strict=True))
    )

  def test_bad_targets(self):
    with self.assertRaisesRegex(ValueError, 'exactly one'):
      calibration.calibrate_lambda(self.router, self.cal_emb)
    with self.assertRaisesRegex(ValueError, 'target_quality_share'):
      calibration.calibrate_lambda(
          self.router, self.cal_emb, target_quality_share=1.5
      )

  def test_select_shrinkage_returns_a_candidate(self):
    best, area_s = calibration.select_shrinkage(
        self.router,
        self.cal_emb[:2000],
        self.cal_q[:2000],
        strengths=(0.0, 4.0, 1e6),
    )
    self.assertIn(best, (0.0, 4.0, 1e6))
    self.assertEqual(area_s.shape, (3,))
    # Infinite shrinkage is prompt-agnostic: worse on clustered data.
    self.assertLess(area_s[2], area_s[0])


if __name__ == '__main__':
  absltest.main()
