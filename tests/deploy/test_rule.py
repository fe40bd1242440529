"""The deployed rule's tie order, and calibrated cost weights off the
breakpoints (rule.py, breakpoints.py, calibration.calibrate_budgets)."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.deploy import breakpoints, calibration, rule
from unirouter_jax.deploy import router as router_lib


def _reference(gamma_qm, cost_m, lam, pool_m):
  """Brute force: sort (score, cost, index) per prompt, in float32."""
  score = (gamma_qm + np.float32(lam) * cost_m).astype(np.float32)
  out = []
  for s in score:
    keys = [(s[j], cost_m[j], j) for j in range(len(s)) if pool_m[j]]
    out.append(min(keys)[2])
  return np.asarray(out)


def near_equal_costs_router(seed=0, n=3000, d=8, k=6):
  """Several LLMs whose costs differ in the 5th digit: their scores cross
  at shallow angles, where float32 rounding decides over a wide zone."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(k, d)) * 4.0
  cluster_n = rng.integers(0, k, size=n)
  emb = (centres[cluster_n] + rng.normal(size=(n, d))).astype(np.float32)
  acc_km = rng.uniform(0.3, 0.9, size=(k, 6))
  q = (rng.uniform(size=(n, 6)) < acc_km[cluster_n]).astype(np.float32)
  cost = np.asarray(
      [1.2669e-4, 1.2670e-4, 1.1070e-4, 1.1071e-4, 3.16e-5, 5.67e-5],
      np.float32,
  )
  router = router_lib.fit_router(
      jax.random.key(seed),
      emb[:1500],
      q[:1500],
      np.ones((1500, 6), bool),
      cost,
      [f'llm{i}' for i in range(6)],
      train_idx=np.arange(300, 1500),
      probe_idx=np.arange(300),
      k=k,
  )
  return router, emb[1500:]


class ChooseTest(parameterized.TestCase):

  @parameterized.parameters(0.0, 0.25, 1.0, 4.0)
  def test_matches_brute_force_with_exact_ties(self, lam):
    # Eighths and small integers: every score is exact, so ties are exact.
    rng = np.random.default_rng(0)
    gamma = (rng.integers(0, 9, size=(500, 7)) / 8).astype(np.float32)
    cost = rng.integers(0, 4, size=7).astype(np.float32)
    pool = np.asarray([1, 1, 0, 1, 1, 1, 1], bool)
    got = jax.jit(rule.choose)(gamma, cost, lam, pool)
    np.testing.assert_array_equal(got, _reference(gamma, cost, lam, pool))
    per_prompt = rule.choose(gamma, cost, jnp.full((500,), lam), pool)
    np.testing.assert_array_equal(per_prompt, got)

  def test_cheaper_then_lower_index(self):
    gamma = np.asarray([[0.5, 0.5, 0.5, 0.9]], np.float32)
    cost = np.asarray([2.0, 1.0, 1.0, 0.0], np.float32)
    choice = rule.choose(gamma, cost, 0.0, np.ones((4,), bool))
    self.assertEqual(int(choice[0]), 1)


class CalibratedLambdaTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.router, cls.emb = near_equal_costs_router()
    cost = np.asarray(cls.router.cost_m, np.float64)
    best = router_lib.route(cls.router, cls.emb, lam=0.0).choice_q
    top = cost[np.asarray(best)].mean()  # the mean cost at lam = 0
    cls.budgets = list(np.linspace(cost.min(), top * (1 - 1e-6), 9))
    cls.calib = calibration.calibrate_budgets(cls.router, cls.emb, cls.budgets)

  def test_vmapped_equals_looped(self):
    for i, b in enumerate(self.budgets):
      one = calibration.calibrate_lambda(self.router, self.emb, target_cost=b)
      for field in ('lam', 'lam_alt', 'mix', 'cost', 'mixed_cost', 'reached'):
        np.testing.assert_allclose(  # vmap may reorder float sums: 1e-6
            getattr(self.calib, field)[i], getattr(one, field), rtol=1e-6
        )

  def test_target_met_on_one_side_only(self):
    c = jax.tree.map(np.asarray, self.calib)
    b = np.asarray(self.budgets, np.float32)
    self.assertTrue(c.reached.all())
    self.assertTrue((c.cost <= b).all())
    inner = c.lam != c.lam_alt
    self.assertGreater(inner.sum(), 3)
    for i in np.flatnonzero(inner):
      routed = router_lib.route(self.router, self.emb, lam=float(c.lam_alt[i]))
      cost_m = np.asarray(self.router.cost_m, np.float64)
      self.assertGreater(cost_m[np.asarray(routed.choice_q)].mean(), b[i])
    np.testing.assert_allclose(c.mixed_cost, b, rtol=1e-5)

  def test_calibrated_lambdas_decide_as_float64_does(self):
    # Off the breakpoints: the exact (float64) rule agrees with the router
    # for every cluster, at lam and lam_alt alike.
    psi = np.asarray(self.router.psi_km, np.float64)
    cost = np.asarray(self.router.cost_m, np.float64)
    lams = np.concatenate([self.calib.lam, self.calib.lam_alt])
    pool = jnp.ones((6,), bool)
    for lam in lams:
      exact = np.argmin(psi + float(lam) * cost, axis=1)
      got = rule.choose(self.router.psi_km, self.router.cost_m, lam, pool)
      np.testing.assert_array_equal(np.asarray(got), exact)

  def test_interior_leaves_a_pair_without_boundary(self):
    bp, noise = breakpoints.breakpoints(
        self.router.psi_km,
        self.router.cluster_mask_k,
        self.router.cost_m,
        jnp.ones((6,), bool),
    )
    self.assertTrue(bool(jnp.all(jnp.diff(bp[jnp.isfinite(bp)]) >= 0)))
    self.assertTrue(bool(jnp.all(noise >= 0)))
    lam = jnp.float32(0.5)
    self.assertEqual(breakpoints.interior(lam, lam, bp, noise), (lam, lam))

  def test_bad_budgets(self):
    with self.assertRaisesRegex(
        ValueError,
        r'^budgets: expected a non-empty list of finite costs >= 0, got '
        r'\[-1\.0\]\.$',
    ):
      calibration.calibrate_budgets(self.router, self.emb, [-1.0])


if __name__ == '__main__':
  absltest.main()
