"""Host-side summaries (evaluation/summary.py) on hand-made curves."""

import json
import math

import numpy as np
from absl.testing import absltest

from unirouter_jax.core.structs import CurveMetrics, MethodResult, TrialResult
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


def _result(curves, selected, g):
  """A :class:`TrialResult` of hand-made per-trial curves (6 trials)."""
  s = 6
  return TrialResult(
      methods={
          name: MethodResult(
              metrics=c,
              selected=np.asarray(selected.get(name, [0] * s)),
              test_area_g=np.zeros((s, g.get(name, 1))),
              val_area_g=np.zeros((s, g.get(name, 1))),
          )
          for name, c in curves.items()
      },
      oracle=curves['uniroute_kmeans'],
      num_eval=np.full(s, 5),
      single_x_m=np.zeros((s, 2)),
      single_quality_m=np.zeros((s, 2)),
      test_llm_m=np.ones((s, 2), bool),
      best_quality=np.full(s, 0.85),
      best_cost=np.ones(s),
      c_min=np.full(s, 0.1),
      c_max=np.full(s, 2.0),
  )


class TableViewTest(absltest.TestCase):
  """``Summary.table / to_frame / to_markdown`` carry the dict's numbers."""

  def setUp(self):
    super().setUp()
    self.grid = np.linspace(0, 1, 5)
    rng = np.random.default_rng(1)
    base = np.sort(rng.uniform(0.4, 0.9, (6, 5)), axis=1)
    up = np.asarray([0.02, -0.01, 0.03, 0.01, 0.02, 0.0])[:, None]
    self.curves = {
        'zero_router': _curves(base - 0.04, [3.0] * 6),
        'knn': _curves(base - 0.05 + up, [2.0, 2.0, np.inf, 2.0, 2.0, 2.0]),
        'uniroute_kmeans': _curves(base, [1.0] * 6),
    }
    self.result = _result(
        self.curves,
        selected={'knn': [1, 1, 0, 1, 2, 1], 'uniroute_kmeans': [2] * 6},
        g={'knn': 3, 'uniroute_kmeans': 3},
    )
    self.grids = {
        'zero_router': {},
        'knn': {'k': np.asarray([5, 10, 20])},
        'uniroute_kmeans': {'k': np.asarray([4, 8, 16])},
    }
    self.out = summary.summarise(self.result, self.grid, self.grids)

  def test_still_a_plain_dict(self):
    self.assertIsInstance(self.out, dict)
    # Sorted by name, as before the table views.
    self.assertEqual(
        list(self.out), ['knn', 'oracle', 'uniroute_kmeans', 'zero_router']
    )
    self.assertEqual(json.loads(json.dumps(self.out)), dict(self.out))
    row = self.out['knn']
    self.assertEqual(row['qnc_trial_mean'], 2.0)
    self.assertIn('sign_tests_vs_uniroute_kmeans', row)

  def test_table_numbers_equal_the_dict(self):
    table = self.out.table()
    self.assertEqual([r['method'] for r in table], list(self.out))
    for rec in table:
      row = self.out[rec['method']]
      # Same floats, not re-computed: exact equality.
      self.assertEqual(rec['area'], row['area'])
      self.assertEqual([rec['area_ci_lo'], rec['area_ci_hi']], row['area_ci'])
      self.assertEqual(rec['qnc'], float(row['qnc']))
      self.assertEqual(rec['peak'], row['peak'])
      test = row.get('sign_test_vs_uniroute_kmeans')
      if test is None:
        self.assertIsNone(rec['wins_vs_uniroute_kmeans'])
      else:
        self.assertEqual(
            (rec['wins_vs_uniroute_kmeans'], rec['losses_vs_uniroute_kmeans']),
            (test['wins'], test['losses']),
        )
    knn, oracle, _, zero = table
    # Per-trial Area vs ZeroRouter, counted by hand.
    diff = self.curves['knn'].area - self.curves['zero_router'].area
    self.assertEqual(
        (knn['wins_vs_zero_router'], knn['losses_vs_zero_router']),
        (int((diff > 0).sum()), int((diff < 0).sum())),
    )
    self.assertEqual(knn['selected'], 'k=10 (67% of trials)')
    self.assertAlmostEqual(knn['selected_share'], 4 / 6, delta=1e-12)
    self.assertEqual(zero['selected'], '-')  # no grid: nothing chosen
    self.assertEqual(oracle['selected'], '-')  # the Oracle

  def test_to_frame_equals_the_table(self):
    import pandas as pd  # pylint: disable=g-import-not-at-top

    frame = self.out.to_frame()
    self.assertEqual(list(frame.index), list(self.out))
    for rec in self.out.table():
      got = frame.loc[rec['method']]
      for key in ('area', 'area_ci_lo', 'area_ci_hi', 'qnc', 'peak'):
        self.assertEqual(float(got[key]), rec[key], msg=key)
      self.assertEqual(got['selected'], rec['selected'])
      for key in ('wins_vs_zero_router', 'losses_vs_uniroute_kmeans'):
        if rec[key] is None:  # a baseline against itself: <NA>
          self.assertTrue(pd.isna(got[key]), msg=key)
        else:
          self.assertEqual(got[key], rec[key], msg=key)

  def test_to_markdown_has_a_row_per_method_with_its_numbers(self):
    md = self.out.to_markdown(labels={'knn': 'K-NN'})
    lines = md.splitlines()
    self.assertEqual(
        lines[0],
        '| Method | Area | Area 95% CI | QNC | Peak | W/L vs uniroute_kmeans'
        ' | W/L vs zero_router | Selected |',
    )
    self.assertLen(lines, 2 + len(self.out))
    for rec, line in zip(self.out.table(), lines[2:], strict=True):
      cells = [c.strip() for c in line.strip('|').split('|')]
      name = 'K-NN' if rec['method'] == 'knn' else rec['method']
      self.assertEqual(cells[0], name)
      self.assertEqual(cells[1], f'{rec["area"]:.4f}')
      self.assertEqual(
          cells[2], f'[{rec["area_ci_lo"]:.4f}, {rec["area_ci_hi"]:.4f}]'
      )
      qnc = rec['qnc']
      self.assertEqual(
          cells[3], '∞' if math.isinf(qnc) else f'{100 * qnc:.1f}%'
      )
      self.assertEqual(cells[4], f'{rec["peak"]:.4f}')
      w = rec['wins_vs_uniroute_kmeans']
      want = '-' if w is None else f'{w}/{rec["losses_vs_uniroute_kmeans"]}'
      self.assertEqual(cells[5], want)
      self.assertEqual(cells[7], rec['selected'])

  def test_selected_point(self):
    self.assertEqual(
        summary.selected_point([0, 2, 2], {'k': [4, 8, 16], 'lr': [1, 2, 3]}),
        {'index': 2, 'share': 2 / 3, 'point': {'k': 16, 'lr': 3}},
    )
    self.assertEqual(
        summary.selected_point([1, 1])['point'], {'index': 1}
    )  # no grid given: named by index
    with self.assertRaisesRegex(ValueError, 'selected_s: expected at least'):
      summary.selected_point([])
    with self.assertRaisesRegex(ValueError, r"grid\['k'\]: expected more"):
      summary.selected_point([3], {'k': [4, 8]})


if __name__ == '__main__':
  absltest.main()
