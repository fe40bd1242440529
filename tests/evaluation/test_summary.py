"""Host-side summaries (evaluation/summary.py) on hand-made curves."""

import numpy as np
from absl.testing import absltest

from unirouter_jax.core.structs import CurveMetrics
from unirouter_jax.evaluation import stats, summary


def _curves(quality_sg, qnc_s):
  q = np.asarray(quality_sg, np.float64)
  grid = np.linspace(0, 1, q.shape[1])
  s = q.shape[0]
  return CurveMetrics(
      quality_g=q,
      area=np.asarray([stats.curve_area(grid, x) for x in q]),
      area50=np.asarray([stats.area50(grid, x) for x in q]),
      qnc=np.asarray(qnc_s, np.float64),
      peak=q.max(1),
      knot_x_p=np.tile(grid, (s, 1)),
      knot_y_p=q,
  )


class SummaryTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.grid = np.linspace(0, 1, 5)
    rng = np.random.default_rng(0)
    base = np.sort(rng.uniform(0.4, 0.9, (6, 5)), axis=1)
    self.ref = _curves(base, [1.0] * 6)
    self.other = _curves(base - 0.05, [2.0, 2.0, np.inf, 2.0, 2.0, 2.0])
    self.trial = {
        'best_quality': np.full(6, 0.85),
        'best_cost': np.ones(6),
        'c_min': np.full(6, 0.1),
        'c_max': np.full(6, 2.0),
    }

  def test_mean_curve_metrics_and_trial_means(self):
    out = summary.summarise_curves(
        {'uniroute_kmeans': self.ref, 'knn': self.other}, self.grid, self.trial
    )
    row = out['uniroute_kmeans']
    mean_q = self.ref.quality_g.mean(0)
    self.assertAlmostEqual(row['area'], stats.curve_area(self.grid, mean_q))
    self.assertAlmostEqual(row['area_trial_mean'], self.ref.area.mean())
    lo, hi = row['curve_ci']
    self.assertTrue(np.all(np.asarray(lo) <= mean_q + 1e-12))
    self.assertTrue(np.all(np.asarray(hi) >= mean_q - 1e-12))
    self.assertNotIn('sign_test_vs_uniroute_kmeans', row)

  def test_inf_qnc_is_json_safe_and_uses_the_median(self):
    out = summary.summarise_curves(
        {'uniroute_kmeans': self.ref, 'knn': self.other}, self.grid, self.trial
    )
    row = out['knn']
    self.assertEqual(row['qnc_trial_mean'], 2.0)  # the median
    self.assertIn('qnc_ci_note', row)
    tests = row['sign_tests_vs_uniroute_kmeans']
    self.assertEqual(tests['area']['losses'], 6)
    self.assertEqual(tests['qnc']['losses'], 6)  # 2 and inf are worse than 1


if __name__ == '__main__':
  absltest.main()
