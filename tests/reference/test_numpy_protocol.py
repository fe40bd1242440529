"""Sanity tests of the NumPy reference protocol on hand-computed examples.

Tolerances: exact binary fractions are compared exactly (``==``); anything
that goes through a division or the 1e-6 QNC tolerance uses ``rel=1e-12``
(pytest.approx) against a value computed by hand in the test.
"""

import json
import math

import numpy as np
import pytest

from tests.reference import numpy_protocol as ref

approx = lambda v: pytest.approx(v, rel=1e-12, abs=1e-15)


# ---------------------------------------------------------------------------
# Envelope.


def envelope(points):
  x, y = zip(*points, strict=True)
  kx, ky = ref.upper_envelope(np.array(x), np.array(y))
  return list(zip(kx.tolist(), ky.tolist(), strict=True))


def test_envelope_drops_collinear_points():
  pts = [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (0.25, 0.25)]
  assert envelope(pts) == [(0.0, 0.0), (1.0, 1.0)]


def test_envelope_duplicates_and_equal_x():
  pts = [(0.0, 0.25), (1.0, 0.75), (0.0, 0.25), (1.0, 0.75), (0.0, 0.125)]
  assert envelope(pts) == [(0.0, 0.25), (1.0, 0.75)]


def test_envelope_point_below_chord_is_dropped():
  assert envelope([(1.0, 1.0), (0.5, 0.25), (0.0, 0.0)]) == [
      (0.0, 0.0),
      (1.0, 1.0),
  ]


def test_envelope_point_above_chord_is_kept():
  assert envelope([(1.0, 1.0), (0.5, 0.75), (0.0, 0.0)]) == [
      (0.0, 0.0),
      (0.5, 0.75),
      (1.0, 1.0),
  ]


def test_envelope_is_cut_at_the_leftmost_peak():
  assert envelope([(0.0, 0.0), (0.5, 1.0), (1.0, 0.5)]) == [
      (0.0, 0.0),
      (0.5, 1.0),
  ]
  assert envelope([(0.0, 0.0), (0.25, 1.0), (0.75, 1.0)]) == [
      (0.0, 0.0),
      (0.25, 1.0),
  ]
  assert envelope([(0.0, 1.0), (0.5, 0.5)]) == [(0.0, 1.0)]


def test_envelope_rejects_bad_input():
  with pytest.raises(ValueError):
    ref.upper_envelope(np.array([]), np.array([]))
  with pytest.raises(ValueError):
    ref.upper_envelope(np.array([0.0, np.nan]), np.array([0.0, 1.0]))


# ---------------------------------------------------------------------------
# Curve metrics.


def metrics(kx, ky, **kw):
  kw = {'c_min': 1.0, 'c_max': 2.0, 'best_cost': 2.0, 'best_quality': 1.0, **kw}
  return ref.curve_metrics(np.array(kx), np.array(ky), **kw)


def test_area_of_a_triangle():
  out = metrics([0.0, 1.0], [0.0, 1.0])
  assert out['area'] == 0.5
  assert out['area50'] == 0.125  # integral of x over [0, 0.5].
  assert out['peak'] == 1.0
  np.testing.assert_allclose(out['quality_g'], np.linspace(0, 1, 101))


def test_area_of_a_trapezoid_and_flat_continuation():
  out = metrics([0.0, 1.0], [0.5, 1.0])
  assert out['area'] == approx(0.75)
  assert out['area50'] == approx(0.25 + 0.0625)
  # Rises to 0.8 at x = 0.5, flat after: 0.5 * 0.5 + 0.5 * 0.8.
  out = metrics([0.0, 0.5], [0.2, 0.8], best_quality=0.8)
  assert out['area'] == approx(0.25 + 0.4)
  assert out['area50'] == approx(0.25)
  assert out['peak'] == 0.8
  assert out['quality_g'][-1] == 0.8
  assert out['quality_g'][25] == approx(0.5)


def test_area_integrates_only_from_zero():
  # From (-0.5, 0) to (0.5, 1): the curve is 0.5 + x on [0, 0.5], then 1.
  out = metrics([-0.5, 0.5], [0.0, 1.0])
  assert out['area'] == approx(0.25 + 0.125 + 0.5)
  assert out['area50'] == approx(0.375)
  assert out['quality_g'][0] == 0.5
  with pytest.raises(ValueError, match='right of x = 0'):
    metrics([0.25, 0.5], [0.0, 1.0])


def test_qnc_reached_at_the_best_llms_cost():
  # LLMs (cost, quality): (1, 0.5), (2, 0.7), (4, 0.8); all on the curve.
  out = ref.curve_from_points(
      [1, 2, 4], [0.5, 0.7, 0.8], [1, 2, 4], [0.5, 0.7, 0.8]
  )
  assert (out['c_min'], out['c_max']) == (1.0, 4.0)
  assert (out['best_cost'], out['best_quality']) == (4.0, 0.8)
  x_reach = 1 / 3 + (0.1 - 1e-6) / (0.8 - 0.7) * (2 / 3)
  assert out['qnc'] == approx((1 + 3 * x_reach) / 4)
  assert abs(out['qnc'] - 1.0) < 1e-5


def test_qnc_is_exactly_one_when_the_cheapest_llm_is_best():
  out = ref.curve_from_points([1.5], [0.6], [1.0, 2.0], [0.9, 0.5])
  assert out['qnc'] == 1.0
  assert list(out['knots_x']) == [0.0]


def test_qnc_of_a_cheaper_router_and_best_llm_ties():
  # Two LLMs share the top quality; the cheaper (cost 3) is best. A router
  # reaches it at cost 2: x = 1/3, plus the 1e-6 slack on the first segment.
  out = ref.curve_from_points([2.0], [0.8], [1, 4, 3], [0.5, 0.8, 0.8])
  assert out['best_cost'] == 3.0
  x_reach = (0.3 - 1e-6) / 0.3 * (1 / 3)
  assert out['qnc'] == approx((1 + 3 * x_reach) / 3)


def test_qnc_is_inf_when_never_reached():
  out = ref.curve_from_points([2.0, 3.0], [0.7, 0.75], [1, 4], [0.5, 0.8])
  assert out['qnc'] == math.inf
  assert out['peak'] == 0.75


def test_cheapest_point_added_with_highest_quality_among_ties():
  out = ref.curve_from_points([3.0], [0.0], [1, 1, 3], [0.2, 0.4, 0.5])
  assert list(out['knots_x']) == [0.0] and list(out['knots_y']) == [0.4]
  assert out['area'] == approx(0.4)


def test_equal_llm_costs_put_every_point_at_zero():
  out = ref.curve_from_points([2.5], [0.7], [2.0, 2.0], [0.3, 0.6])
  assert list(out['knots_x']) == [0.0] and list(out['knots_y']) == [0.7]
  assert out['area'] == approx(0.7) and out['area50'] == approx(0.35)
  assert out['qnc'] == 1.0


# ---------------------------------------------------------------------------
# Validation statistics, lambda rule, ZeroRouter hull.


def test_val_errors_and_rule_costs():
  q = np.array([[1.0, np.nan, 0.25], [0.0, np.nan, np.nan]])
  c = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]])
  val = np.array([0, 1])
  np.testing.assert_array_equal(ref.val_errors(q, val), [0.5, 0.5, 0.75])
  np.testing.assert_array_equal(ref.rule_costs(c, val), [2.0, 3.0, 2.5])


def test_lambda_grid():
  lam = ref.lambda_grid(np.array([1.0, 5.0, 3.0]))
  assert lam.shape == (200,) and lam[0] == 0.0
  assert lam[1] == approx(1e-4 / 4) and lam[-1] == approx(1e4 / 4)
  assert np.all(np.diff(lam) > 0)
  assert ref.lambda_grid(np.array([2.0, 2.0]))[-1] == approx(1e4)


def test_plugin_routing_ties_go_to_the_lowest_llm():
  gamma = np.array([[0.25, 0.25, 0.5]])
  cost_e = np.array([[10.0, 20.0, 30.0]])
  q_e = np.array([[0.1, 0.2, 0.3]])
  c, q = ref.plugin_points(
      gamma, np.array([2.0, 1.0, 1.0]), cost_e, q_e, np.array([0.0, 1.0])
  )
  np.testing.assert_array_equal(c, [10.0, 20.0])
  np.testing.assert_array_equal(q, [0.1, 0.2])


@pytest.mark.parametrize(
    'costs, errors, hull',
    [
        ([1, 2, 3], [0.5, 0.45, 0.25], [0, 2]),  # The middle LLM lies above.
        ([1, 2, 3], [0.5, 0.3, 0.25], [0, 1, 2]),  # Below the chord: kept.
        ([1, 2, 3], [0.5, 0.375, 0.25], [0, 2]),  # Collinear: dropped.
        ([1, 3, 3], [0.5, 0.25, 0.25], [0, 1]),  # Duplicate: lowest index.
        ([3, 1, 3], [0.25, 0.5, 0.25], [1, 0]),
        ([1, 3, 4, 4], [0.5, 0.25, 0.375, 0.25], [0, 1]),  # Dominated.
        ([1, 1, 3], [0.5, 0.375, 0.25], [1, 2]),  # Cheapest: lower error.
        ([1, 2], [0.25, 0.5], [0]),  # The cheapest is the most accurate.
    ],
)
def test_zero_router_hull(costs, errors, hull):
  out = ref.zero_router_hull(np.array(costs, float), np.array(errors, float))
  assert out.tolist() == hull


# ---------------------------------------------------------------------------
# End to end on hand-made data.


def hand_data():
  """8 prompts, 4 LLMs; LLMs 0-2 are the test LLMs, val 0-3, test 4-7.

  Validation: costs 1, 2, 3 and errors 0.5, 0.5, 0.25, so LLM 1 lies above
  the hull. Test: costs 2, 3, 6 and qualities 0.25, 0.75, 0.75.
  """
  nan = np.nan
  quality = np.array(
      [
          [1, 1, 1, 0],
          [0, 1, 1, 0],
          [0, 0, 1, 0],
          [1, 0, 0, 0],
          [1, 1, 1, 1],
          [0, 1, 1, 0],
          [0, 1, 0, nan],
          [0, 0, 1, 1],
      ],
      dtype=float,
  )
  cost = np.zeros((8, 4))
  cost[:4] = [1.0, 2.0, 3.0, 9.0]
  cost[4:] = [2.0, 3.0, 6.0, 9.0]
  emb = np.arange(16, dtype=float).reshape(8, 2)
  trial = {
      'test_llms': [2, 0, 1],
      'train': [0, 1, 2, 3],
      'val': [0, 1, 2, 3],
      'test': [4, 5, 6, 7],
  }
  return emb, quality, cost, trial


def test_zero_router_end_to_end():
  emb, quality, cost, trial = hand_data()
  out = ref.evaluate_trial(emb, quality, cost, trial, 'zero_router')
  assert out['hull_llms'].tolist() == [0, 2]
  # Its points are the hull LLMs' test points: (2, 0.25) and (6, 0.75).
  np.testing.assert_array_equal(out['point_cost'], [2.0, 6.0])
  np.testing.assert_array_equal(out['point_quality'], [0.25, 0.75])
  assert out['num_eval'] == 4
  assert (out['c_min'], out['c_max']) == (2.0, 6.0)
  assert (out['best_cost'], out['best_quality']) == (3.0, 0.75)
  assert out['area'] == approx(0.5)
  assert out['area50'] == approx(0.125 + 0.0625)
  assert out['peak'] == 0.75
  x_reach = (0.5 - 1e-6) / 0.5
  assert out['qnc'] == approx((2 + 4 * x_reach) / 3)


def test_oracle_end_to_end():
  # lambda < 1/2: prompts go to LLMs 0, 1, 1, 2: (3.5, 1). 1/2 <= lambda < 1:
  # the last prompt moves to LLM 0: (2.5, 0.75). Beyond: all LLM 0: (2, .25).
  emb, quality, cost, trial = hand_data()
  out = ref.evaluate_trial(emb, quality, cost, trial, 'oracle')
  assert set(zip(out['point_cost'], out['point_quality'], strict=True)) == {
      (3.5, 1.0),
      (2.5, 0.75),
      (2.0, 0.25),
  }
  np.testing.assert_array_equal(out['knots_x'], [0.0, 0.125, 0.375])
  np.testing.assert_array_equal(out['knots_y'], [0.25, 0.75, 1.0])
  assert out['area'] == approx(0.0625 + 0.21875 + 0.625)
  assert out['area50'] == approx(0.0625 + 0.21875 + 0.125)
  x_reach = 0.125 * (0.5 - 1e-6) / 0.5
  assert out['qnc'] == approx((2 + 4 * x_reach) / 3)


def test_eval_prompts_drop_missing_test_labels_only():
  emb, quality, cost, trial = hand_data()
  quality[5, 1] = np.nan  # A test LLM's label: prompt 5 leaves E.
  # quality[6, 3] is NaN already: LLM 3 is a training LLM, prompt 6 stays.
  e = ref.eval_prompts(quality, np.array([4, 5, 6, 7]), np.array([0, 1, 2]))
  assert e.tolist() == [4, 6, 7]
  out = ref.evaluate_trial(emb, quality, cost, trial, 'oracle')
  assert out['num_eval'] == 3
  quality[4:, 0] = np.nan
  with pytest.raises(ValueError, match='labelled for every test LLM'):
    ref.evaluate_trial(emb, quality, cost, trial, 'oracle')


def test_evaluate_and_bad_methods():
  emb, quality, cost, trial = hand_data()
  methods = {
      'zr': ('zero_router', None),
      'nn': ('knn', 2),
      'or': ('oracle', None),
  }
  out = ref.evaluate(emb, quality, cost, [trial, trial], methods)
  assert sorted(out) == ['nn', 'or', 'zr']
  assert all(len(v) == 2 for v in out.values())
  assert out['or'][1]['area'] == approx(0.90625)
  with pytest.raises(ValueError, match='unknown method'):
    ref.evaluate_trial(emb, quality, cost, trial, 'nope')
  with pytest.raises(ValueError, match='needs k'):
    ref.evaluate_trial(emb, quality, cost, trial, 'knn')


# ---------------------------------------------------------------------------
# K-NN and K-means error estimates.


def knn_data():
  """1-D embeddings. Val prompts 0-5 at 0, 1, 2, 3, 10, 11; 6 at 0.4, 7 at
  10.6, 8 at 0.5 (equidistant from prompts 0 and 1)."""
  emb = np.array([[0], [1], [2], [3], [10], [11], [0.4], [10.6], [0.5]], float)
  quality = np.full((9, 2), 0.5)
  quality[:6, 0] = [1.0, np.nan, 0.0, 0.5, 0.2, np.nan]
  quality[:6, 1] = [np.nan, np.nan, np.nan, 0.2, 0.9, 0.5]
  return emb, quality


def test_knn_skips_unlabelled_neighbours():
  emb, quality = knn_data()
  val, llms = np.arange(6), np.array([0, 1])
  err_val = [(0 + 1 + 0.5 + 0.8) / 4, (0.8 + 0.1 + 0.5) / 3]
  np.testing.assert_allclose(ref.val_errors(quality, val), err_val, rtol=1e-15)
  gamma = ref.gamma_knn(emb, quality, val, np.array([6, 7]), llms, 2)
  # Prompt 6: neighbours 0, 1 (1 unlabelled for LLM 0, neither for LLM 1).
  # Prompt 7: neighbours 5, 4 (5 unlabelled for LLM 0).
  expected = [[0.0, err_val[1]], [0.8, (0.5 + 0.1) / 2]]
  np.testing.assert_allclose(gamma, expected, rtol=1e-15)
  gamma = ref.gamma_knn(emb, quality, val, np.array([6]), llms, 3)
  np.testing.assert_allclose(gamma, [[0.5, err_val[1]]], rtol=1e-15)
  with pytest.raises(ValueError, match='k <= '):
    ref.gamma_knn(emb, quality, val, np.array([6]), llms, 7)


def test_knn_distance_ties_go_to_the_earlier_val_position():
  emb, quality = knn_data()
  llms = np.array([0, 1])
  err_val = (0 + 1 + 0.5 + 0.8) / 4
  first = ref.gamma_knn(emb, quality, np.arange(6), np.array([8]), llms, 1)
  assert first[0, 0] == 0.0  # Prompt 0.
  val = np.array([1, 0, 2, 3, 4, 5])
  second = ref.gamma_knn(emb, quality, val, np.array([8]), llms, 1)
  assert second[0, 0] == approx(err_val)  # Prompt 1: unlabelled, fallback.


def test_kmeans_psi_falls_back_to_err_val_on_an_empty_val_cluster():
  offsets = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]])
  centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])  # A, B, C.
  train = (centres[:, None, :] + offsets[None]).reshape(9, 2)
  val = centres[[0, 0, 1, 1]] + 0.05  # None in C.
  evals = centres + 0.02
  emb = np.concatenate([train, val, evals])
  quality = np.full((16, 2), np.nan)
  quality[9:13, 0] = [1.0, 0.0, 1.0, 1.0]  # A: error 0.5; B: 0.
  quality[11:13, 1] = [0.25, 0.75]  # Only B is labelled for LLM 1.
  err_val = [0.25, 0.5]
  gamma = ref.gamma_kmeans(
      emb,
      quality,
      np.arange(9),
      np.arange(9, 13),
      np.arange(13, 16),
      np.array([0, 1]),
      num_clusters=3,
      seed=0,
  )
  np.testing.assert_allclose(
      gamma, [[0.5, err_val[1]], [0.0, 0.5], err_val], rtol=1e-15
  )


# ---------------------------------------------------------------------------
# Aggregation.


def test_mean_curve_qnc_is_one_when_every_trial_reaches_its_best_at_its_cost():
  # Jumps: the cheapest LLM is the best in each trial.
  trials = [
      ref.curve_from_points([1.5], [0.6], [1.0, 2.0], [0.9, 0.5]),
      ref.curve_from_points([5.0], [0.1], [3.0, 7.0], [0.4, 0.2]),
  ]
  assert [t['qnc'] for t in trials] == [1.0, 1.0]
  assert ref.mean_curve_qnc(trials) == 1.0
  # Slopes: on [0.5, 1] the mean curve is 0.55 + 0.4 (u - 0.5).
  trials = [
      ref.curve_from_points([1, 2], [0.5, 0.7], [1, 2], [0.5, 0.7]),
      ref.curve_from_points([2, 4], [0.6, 0.8], [2, 4], [0.6, 0.8]),
  ]
  expected = 0.5 + (0.2 - 1e-6) / 0.4
  assert [t['qnc'] for t in trials] == [approx(expected)] * 2
  assert ref.mean_curve_qnc(trials) == approx(expected)
  assert abs(ref.mean_curve_qnc(trials) - 1.0) < 1e-5


def test_mean_curve_qnc_with_a_late_starting_trial():
  # Trial A reaches 0.9 from u = 0.25 on; trial B's best LLM is its
  # cheapest (reached at u = 1, its first point). Left of u = 1, B counts at
  # its target (capped), so it does not hold the mean back until u = 1: the
  # mean curve reaches the mean target where A does.
  a = ref.curve_from_points([0.5], [0.9], [1.0, 2.0], [0.5, 0.9])
  b = ref.curve_from_points([1.5], [0.6], [1.0, 2.0], [0.9, 0.5])
  assert (a['qnc'], b['qnc']) == (0.25, 1.0)
  assert abs(ref.mean_curve_qnc([a, b]) - 0.25) < 1e-5
  assert ref.mean_curve_qnc([a]) == 0.25


def test_mean_curve_qnc_inf_when_never_reached():
  t = ref.curve_from_points([2.0, 3.0], [0.7, 0.75], [1, 4], [0.5, 0.8])
  assert ref.mean_curve_qnc([t]) == math.inf


def test_mean_curve_qnc_lies_within_the_per_trial_range():
  rng = np.random.default_rng(0)
  for _ in range(20):
    trials = []
    for _ in range(int(rng.integers(1, 6))):
      m = int(rng.integers(2, 6))
      llm_cost = rng.uniform(0.1, 5.0, m)
      llm_quality = rng.uniform(0.2, 0.9, m)
      p = int(rng.integers(1, 8))
      # Router points, some cheaper than every LLM; plus the LLMs' own points
      # so that every trial reaches its best LLM.
      cost = np.concatenate([rng.uniform(0.0, 6.0, p), llm_cost])
      quality = np.concatenate([rng.uniform(0.0, 1.0, p), llm_quality])
      trials.append(ref.curve_from_points(cost, quality, llm_cost, llm_quality))
    per_trial = [t['qnc'] for t in trials]
    assert np.all(np.isfinite(per_trial))
    mean = ref.mean_curve_qnc(trials)
    assert min(per_trial) * (1 - 1e-12) <= mean <= max(per_trial) * (1 + 1e-12)
    single = ref.mean_curve_qnc(trials[:1])
    assert single == approx(per_trial[0])


def test_sign_test():
  assert ref.sign_test([1, 2, 3, 4, 5, 0], [0] * 6) == (5, 0, 1, 0.0625)
  assert ref.sign_test([1, 2, 3, 4, 5, 0], [0] * 6, higher_is_better=False) == (
      0,
      5,
      1,
      0.0625,
  )
  assert ref.sign_test([1, 0], [0, 1]) == (1, 1, 0, 1.0)
  assert ref.sign_test([math.inf, 1.0], [math.inf, 1.0]) == (0, 0, 2, 1.0)
  # 8 wins, 2 losses: 2 (1 + 10 + 45) / 1024.
  a = [1] * 8 + [0] * 2
  b = [0] * 8 + [1] * 2
  assert ref.sign_test(a, b) == (8, 2, 0, 112 / 1024)
  with pytest.raises(ValueError):
    ref.sign_test([np.nan], [0.0])


# ---------------------------------------------------------------------------
# Splits files.


def test_read_splits_round_trip(tmp_path):
  prompt_ids = list(range(100, 110))
  llm_names = ['a', 'b', 'c', 'd']
  trials = [
      {'test_llms': [2, 0], 'train': [0, 1], 'val': [5, 4], 'test': [8, 9]},
      {'test_llms': [3], 'train': [2], 'val': [3], 'test': [7, 6]},
  ]
  raw = [
      {
          'test_llms': [llm_names[i] for i in t['test_llms']],
          **{
              key: [prompt_ids[i] for i in t[key]]
              for key in ('train', 'val', 'test')
          },
      }
      for t in trials
  ]
  raw[0]['val'] = [str(p) for p in raw[0]['val']]  # Ids compare as strings.
  path = tmp_path / 'splits.json'
  path.write_text(json.dumps(raw))
  read = ref.read_splits(path, prompt_ids, llm_names)
  assert len(read) == 2
  for got, want in zip(read, trials, strict=True):
    assert got['test_llms'].tolist() == sorted(want['test_llms'])
    for key in ('train', 'val', 'test'):
      assert got[key].tolist() == want[key]
  read = ref.read_splits(path, [str(p) for p in prompt_ids], llm_names)
  assert read[0]['val'].tolist() == [5, 4]


def test_read_splits_bad_ids(tmp_path):
  good = {'test_llms': ['a'], 'train': [1], 'val': [2], 'test': [3]}
  path = tmp_path / 'splits.json'
  path.write_text(json.dumps([good, {**good, 'test': [3, 999]}]))
  with pytest.raises(ValueError, match=r"trial 1: unknown prompt id '999'"):
    ref.read_splits(path, [1, 2, 3], ['a', 'b'])
  path.write_text(json.dumps([{**good, 'test_llms': ['zz']}]))
  with pytest.raises(ValueError, match=r"trial 0: unknown LLM name 'zz'"):
    ref.read_splits(path, [1, 2, 3], ['a', 'b'])
