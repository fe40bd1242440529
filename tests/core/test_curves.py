"""Tests of unirouter_jax.core.curves: exact envelope, Area, Area(50%), QNC."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.core import curves
from unirouter_jax.core.curves import (
    best_llm,
    curve_metrics,
    deferral_points,
    hull_vertices,
    normalise_cost,
    pool_cost_range,
    single_llm_points,
    upper_envelope,
)


def x64():
  if hasattr(jax, 'enable_x64'):
    return jax.enable_x64(True)
  return jax.experimental.enable_x64()  # Older JAX.


def brute_envelope(x, y, mask, grid):
  """Max over pairs of interpolations; flat right of the (leftmost) peak and
  left of the leftmost point."""
  x, y = x[mask].astype(np.float64), y[mask].astype(np.float64)
  top = np.max(y)
  x_top = np.min(x[y == top])
  out = []
  for t in grid:
    if t >= x_top:
      out.append(top)
      continue
    t = max(t, np.min(x))
    best = -np.inf
    for i in range(len(x)):
      for j in range(len(x)):
        if x[i] <= t <= x[j]:
          if x[j] == x[i]:
            v = max(y[i], y[j])
          else:
            v = y[i] + (t - x[i]) / (x[j] - x[i]) * (y[j] - y[i])
          best = max(best, v)
    out.append(best)
  return np.array(out)


# Three vertices and one point under the hull.
X3 = np.array([0.0, 0.4, 1.0, 0.2], np.float32)
Y3 = np.array([0.5, 0.8, 0.9, 0.55], np.float32)
M3 = np.ones(4, bool)


class MetricsTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(jax.numpy_rank_promotion('raise'))

  def _check_three_point(self, m):
    # [0, .4]: .4 * (.5 + .8) / 2 = .26; [.4, 1]: .6 * (.8 + .9) / 2 = .51.
    np.testing.assert_allclose(m.area, 0.77, atol=1e-6)
    # f(.5) = .8 + .1 / .6 * .1; [.4, .5]: .1 * (.8 + f(.5)) / 2.
    f5 = 0.8 + 0.1 / 0.6 * 0.1
    np.testing.assert_allclose(m.area50, 0.26 + 0.05 * (0.8 + f5), atol=1e-6)
    # Reaches .85 at x = .4 + .5 * .6 = .7 -> raw 1 + .7 * 10 = 8 -> 8 / 8.
    np.testing.assert_allclose(m.qnc, 1.0, atol=1e-5)
    np.testing.assert_allclose(m.peak, 0.9, atol=1e-7)
    np.testing.assert_allclose(
        m.quality_g[np.array([0, 40, 100])], [0.5, 0.8, 0.9], atol=1e-6
    )

  def test_three_point_curve_hand_values(self):
    m = curve_metrics(
        X3,
        Y3,
        M3,
        best_quality=0.85,
        best_cost=8.0,
        c_min=1.0,
        c_max=11.0,
        atol=0.0,
    )
    self._check_three_point(m)

  def test_three_point_curve_hand_values_x64(self):
    with x64():
      m = jax.jit(curve_metrics)(
          X3.astype(np.float64),
          Y3.astype(np.float64),
          M3,
          best_quality=0.85,
          best_cost=8.0,
          c_min=1.0,
          c_max=11.0,
          atol=0.0,
      )
      self.assertEqual(m.area.dtype, jnp.float64)
      self._check_three_point(m)

  def test_qnc_inf_when_never_reached(self):
    m = curve_metrics(
        X3, Y3, M3, best_quality=0.95, best_cost=8.0, c_min=1.0, c_max=11.0
    )
    self.assertEqual(float(m.qnc), np.inf)

  def test_qnc_at_start_when_leftmost_point_reaches(self):
    m = curve_metrics(
        X3,
        Y3,
        M3,
        best_quality=0.5,
        best_cost=2.0,
        c_min=1.0,
        c_max=11.0,
        atol=0.0,
    )
    np.testing.assert_allclose(m.qnc, 0.5, atol=1e-6)  # raw c_min / 2.

  def test_flat_right_of_peak_and_left_of_first_point(self):
    kw = dict(best_quality=1.0, best_cost=1.0, c_min=0.0, c_max=1.0)
    mask = np.array([True, True, True, False])
    x = np.array([0.0, 0.5, 1.0, 9.0], np.float32)
    y = np.array([0.5, 0.9, 0.7, 9.0], np.float32)  # Point 3 masked out.
    m = curve_metrics(x, y, mask, **kw)
    np.testing.assert_allclose(m.area, 0.5 * 0.7 + 0.5 * 0.9, atol=1e-6)
    x = np.array([0.2, 1.0, 1.0, 0.0], np.float32)
    y = np.array([0.6, 0.8, 0.8, 0.9], np.float32)
    m = curve_metrics(x, y, mask, **kw)
    np.testing.assert_allclose(m.area, 0.2 * 0.6 + 0.8 * 0.7, atol=1e-6)

  @parameterized.parameters(0, 1, 2, 3)
  def test_envelope_matches_brute_force(self, seed):
    rng = np.random.default_rng(seed)
    p = 12
    x = rng.random(p).astype(np.float32) * 1.2 - 0.1
    y = rng.random(p).astype(np.float32)
    x[3], y[3] = x[1], y[1] * 0.5  # Shared x.
    x[5], y[5] = x[2], y[2]  # Exact duplicate.
    mask = rng.random(p) > 0.25
    mask[0] = True
    grid = np.linspace(-0.2, 1.2, 57).astype(np.float32)
    got = upper_envelope(x, y, mask, grid)
    np.testing.assert_allclose(got, brute_envelope(x, y, mask, grid), atol=1e-5)

  def test_vmap_over_trials_equals_loop(self):
    rng = np.random.default_rng(7)
    x = rng.random((4, 9)).astype(np.float32)
    y = rng.random((4, 9)).astype(np.float32)
    mask = rng.random((4, 9)) > 0.3
    mask[:, 0] = True
    mask[3] = False  # A trial with no point.
    kw = dict(best_quality=0.7, best_cost=1.0, c_min=0.0, c_max=2.0)
    batched = jax.vmap(lambda a, b, c: curve_metrics(a, b, c, **kw))(x, y, mask)
    for i in range(4):
      one = curve_metrics(x[i], y[i], mask[i], **kw)
      np.testing.assert_allclose(batched.area[i], one.area, atol=1e-6)
      np.testing.assert_allclose(batched.quality_g[i], one.quality_g, atol=1e-6)
      np.testing.assert_allclose(batched.qnc[i], one.qnc, atol=1e-6)
    # No point: zero curve, never reaches, finite everything else.
    self.assertEqual(float(batched.area[3]), 0.0)
    self.assertEqual(float(batched.qnc[3]), np.inf)
    self.assertTrue(np.isfinite(np.asarray(batched.quality_g)).all())

  def test_hull_vertices_ties_and_collinear(self):
    x = np.array([0.0, 1.0, 1.0, 2.0, 0.0, 3.0], np.float32)
    y = np.array([0.0, 1.0, 1.0, 2.0, -1.0, 1.5], np.float32)
    # 1 and 2 duplicate and collinear with 0 and 3; 4 below 0; 5 after peak.
    np.testing.assert_array_equal(
        hull_vertices(x, y, np.ones(6, bool)), [1, 0, 0, 1, 0, 0]
    )
    y[1] = y[2] = 1.5  # Now a vertex: the lowest index of the duplicates.
    np.testing.assert_array_equal(
        hull_vertices(x, y, np.ones(6, bool)), [1, 1, 0, 1, 0, 0]
    )

  def test_deferral_points_and_costs(self):
    quality = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]], np.float32)
    cost = np.array([[1, 2, 4], [1, 3, 4], [2, 2, 4], [9, 9, 9]], np.float32)
    weight = np.array([1, 1, 1, 0], np.float32)
    choice = np.array([[0, 1, 2, 0], [2, 2, 2, 2]], np.int32)
    c, q = deferral_points(choice, quality, cost, weight)
    np.testing.assert_allclose(c, [(1 + 3 + 4) / 3, 4.0], atol=1e-6)
    np.testing.assert_allclose(q, [2 / 3, 2 / 3], atol=1e-6)
    pool = np.array([True, True, False])
    c_min, c_max = pool_cost_range(cost, weight, pool)
    np.testing.assert_allclose([c_min, c_max], [4 / 3, 7 / 3], atol=1e-6)
    np.testing.assert_allclose(
        normalise_cost(jnp.array([4 / 3, 7 / 3]), c_min, c_max),
        [0, 1],
        atol=1e-6,
    )
    np.testing.assert_array_equal(normalise_cost(jnp.array([5.0]), 2.0, 2.0), 0)
    cost_m, quality_m = single_llm_points(quality, cost, weight, pool)
    np.testing.assert_allclose(cost_m, [4 / 3, 7 / 3, 0], atol=1e-6)
    np.testing.assert_allclose(quality_m, [2 / 3, 2 / 3, 0], atol=1e-6)
    bq, bc = best_llm(quality, cost, weight, pool)  # Tie -> the cheaper.
    np.testing.assert_allclose([bq, bc], [2 / 3, 4 / 3], atol=1e-6)
    c, q = deferral_points(choice, quality, cost, np.zeros(4, np.float32))
    np.testing.assert_array_equal(np.concatenate([c, q]), 0.0)


class TrustworthyCurveTest(absltest.TestCase):
  """Defects of issue 16 (each failed on the previous conventions)."""

  def _ev(self, quality_qm, mask_qm, cost_m):
    q = np.asarray(quality_qm, np.float32)
    cost_qm = np.broadcast_to(np.asarray(cost_m, np.float32), q.shape)
    pool = jnp.ones((q.shape[1],), bool)
    return curves.eval_set(q, np.asarray(mask_qm), cost_qm, pool), pool

  def test_missing_label_is_one_rule_for_single_llms(self):
    # LLM 0 is right on both of its 2 labelled prompts out of 4. The prompts
    # it lacks are dropped for everyone: it scores 1.0, not 0.5.
    q = [[1, 0], [1, 1], [0, 1], [0, 0]]
    mask = [[True, True], [True, True], [False, True], [False, True]]
    ev, pool = self._ev(q, mask, [1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(ev.weight_q), [1, 1, 0, 0])
    _, quality_m = curves.single_llm_points(
        ev.quality_qm, ev.cost_qm, ev.weight_q, pool
    )
    np.testing.assert_allclose(np.asarray(quality_m), [1.0, 0.5], atol=1e-7)

  def test_router_does_not_see_the_test_label_mask(self):
    # gamma prefers LLM 0 everywhere; LLM 0 lacks a label on prompt 2. The
    # rule must still choose LLM 0 (no oracle knowledge of the mask), and
    # prompt 2 simply does not count.
    q = [[1, 0], [1, 0], [0, 1]]
    gamma = jnp.asarray([[0.1, 0.9]] * 3)
    full, pool = self._ev(q, np.ones((3, 2), bool), [1.0, 1.0])
    holed, _ = self._ev(q, [[1, 1], [1, 1], [0, 1]], [1.0, 1.0])
    lam = jnp.zeros((1,))
    _, q_holed = curves.rule_points(gamma, pool, jnp.ones(2), holed, lam)
    self.assertAlmostEqual(float(q_holed[0]), 1.0, delta=1e-7)
    _, q_full = curves.rule_points(gamma, pool, jnp.ones(2), full, lam)
    self.assertAlmostEqual(float(q_full[0]), 2 / 3, delta=1e-6)

  def test_curve_starts_at_the_cheapest_llm_not_flat_left(self):
    # The router's only point is at x = 0.5 with quality .9; the cheapest
    # LLM (x = 0) has quality .3. No free Area left of the router's point:
    # the curve is the segment from (0, .3) to (.5, .9), then flat.
    q = [[0.3, 0.9]] * 4
    ev, pool = self._ev(q, np.ones((4, 2), bool), [1.0, 3.0])
    m = curves.curve_from_points(
        jnp.asarray([2.0]),
        jnp.asarray([0.9]),
        True,
        pool,
        ev,
        jnp.linspace(0, 1, 101),
    )
    self.assertAlmostEqual(float(m.area50), 0.5 * (0.3 + 0.9) / 2, delta=1e-6)
    self.assertAlmostEqual(float(m.area), 0.3 + 0.45, delta=1e-6)


if __name__ == '__main__':
  absltest.main()
