"""Tests of unirouter_jax.core.lambda_path against routing at every lambda.

The reference is written from method.md 2.1 in NumPy float64: at each
``lam`` every prompt goes to ``argmin_m gamma + lam c`` (lowest index on
ties), and the realised cost and quality are weighted means.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.core import curves, lambda_path, routing


def numpy_rule(gamma, rule_cost, lam, pool, quality, cost, weight):
  """``(cost_l, quality_l)`` by routing at every lam, in float64."""
  gamma, rule_cost = np.float64(gamma), np.float64(rule_cost)
  lam, weight = np.float64(lam), np.float64(weight)
  if not pool.any():
    choice = np.zeros((len(lam), gamma.shape[0]), int)
  else:
    score = gamma[None] + lam[:, None, None] * rule_cost[None, None, :]
    score = np.where(pool[None, None, :], score, np.inf)
    choice = np.argmin(score, axis=-1)  # first index on ties
  rows = np.arange(gamma.shape[0])
  total = weight.sum()
  out = []
  for v in (np.float64(cost), np.float64(quality)):
    picked = v[rows[None, :], choice]  # [l, q]
    out.append(picked @ weight / total if total > 0 else 0 * lam)
  return out


def inputs(seed, q=300, m=7, ties=False):
  r = np.random.default_rng(seed)
  gamma = r.random((q, m)).astype(np.float32)
  rule_cost = r.random(m).astype(np.float32)
  if ties:
    gamma = (np.round(gamma * 4) / 4).astype(np.float32)  # cluster-like
    gamma[:, 5] = gamma[:, 4]  # a duplicate LLM at another price
    rule_cost[3] = rule_cost[2]  # two LLMs at one price
    gamma[:, 6] = gamma[:, 1]
    rule_cost[6] = rule_cost[1]  # an exact duplicate of LLM 1
  quality = (r.random((q, m)) < 0.7).astype(np.float32)
  cost = r.random((q, m)).astype(np.float32)
  weight = (r.random(q) < 0.9).astype(np.float32)
  pool = np.ones(m, bool)
  pool[0] = False
  return gamma, rule_cost, pool, quality, cost, weight


def lambdas(rule_cost, pool, num=200):
  return np.asarray(
      curves.scale_lambdas(
          routing.lambda_grid(num), jnp.asarray(rule_cost), jnp.asarray(pool)
      )
  )


def assert_matches_numpy(
    gamma, rule_cost, lam, pool, quality, cost, weight, atol=2e-6
):
  got = lambda_path.rule_path_points(
      gamma, rule_cost, jnp.asarray(lam), pool, quality, cost, weight
  )
  want = numpy_rule(gamma, rule_cost, lam, pool, quality, cost, weight)
  for g, w in zip(got, want, strict=True):
    np.testing.assert_allclose(np.asarray(g), w, rtol=0, atol=atol)


class LambdaPathTest(parameterized.TestCase):

  @parameterized.parameters(
      dict(seed=0, ties=False),
      dict(seed=1, ties=True),
      dict(seed=2, ties=True),
  )
  def test_equals_routing_at_every_lambda(self, seed, ties):
    gamma, rule_cost, pool, quality, cost, weight = inputs(seed, ties=ties)
    lam = lambdas(rule_cost, pool)
    assert_matches_numpy(gamma, rule_cost, lam, pool, quality, cost, weight)

  def test_more_exact_than_float32_scores(self):
    # At large lam, float32 gamma + lam c rounds the errors away; the
    # breakpoints do not. Count disagreements with the float64 rule.
    bad_path, bad_direct = 0, 0
    for seed in range(4):
      gamma, rule_cost, pool, quality, cost, weight = inputs(seed, q=1000)
      rule_cost = 0.5 + 0.01 * rule_cost  # nearly equal prices
      lam = lambdas(rule_cost, pool)
      want = numpy_rule(gamma, rule_cost, lam, pool, quality, cost, weight)
      path = lambda_path.rule_path_points(
          gamma, rule_cost, jnp.asarray(lam), pool, quality, cost, weight
      )
      direct = curves.deferral_points(
          routing.route_grid(gamma, rule_cost, jnp.asarray(lam), pool),
          quality,
          cost,
          weight,
      )
      bad_path += sum(int(np.sum(np.abs(np.asarray(p) - w) > 1e-5))
                      for p, w in zip(path, want, strict=True))  # fmt: skip
      bad_direct += sum(int(np.sum(np.abs(np.asarray(d) - w) > 1e-5))
                        for d, w in zip(direct, want, strict=True))  # fmt: skip
    self.assertEqual(bad_path, 0)
    self.assertGreater(bad_direct, 0)  # so the check above can fail

  def test_exact_ties_go_to_the_lowest_index(self):
    # Oracle-like 0/1 errors: at lam = 0 many LLMs tie at error 0, and the
    # breakpoint 1 / (c_max - c_min) is the grid's lam = 1 to the last bit.
    _, rule_cost, pool, quality, cost, weight = inputs(3)
    gamma = 1.0 - quality
    lam = lambdas(rule_cost, pool)
    assert_matches_numpy(gamma, rule_cost, lam, pool, quality, cost, weight)

  def test_breakpoint_hit_exactly(self):
    # Errors 1, 1, 0: the breakpoint between LLMs 0 and 2 is
    # 1 / (c_2 - c_0) = 2, the grid's lam = 1 (costs exact in binary, so
    # the tie is exact in real arithmetic too: the lowest index wins).
    rule_cost = np.asarray([0.125, 0.25, 0.625], np.float32)
    gamma = np.tile(np.asarray([1.0, 1.0, 0.0], np.float32), (4, 1))
    quality, pool = 1.0 - gamma, np.ones(3, bool)
    cost, weight = np.tile(rule_cost, (4, 1)), np.ones(4, np.float32)
    lam = lambdas(rule_cost, pool)  # 1 is a point of the default grid
    self.assertIn(np.float32(1.0) / (rule_cost[2] - rule_cost[0]), lam)
    assert_matches_numpy(
        gamma, rule_cost, lam, pool, quality, cost, weight, atol=1e-7
    )

  def test_precision_over_a_wide_cost_range(self):
    # Realised costs over four decades: the mean cost at large lam (cheap
    # LLMs) is a small remainder of large cancelling sums.
    gamma, rule_cost, pool, quality, _, weight = inputs(7, q=2000, m=9)
    r = np.random.default_rng(7)
    cost = (10.0 ** r.uniform(-5, -1, gamma.shape)).astype(np.float32)
    rule_cost = cost.mean(0)
    lam = lambdas(rule_cost, pool)
    got = lambda_path.rule_path_points(
        gamma, rule_cost, jnp.asarray(lam), pool, quality, cost, weight
    )
    want = numpy_rule(gamma, rule_cost, lam, pool, quality, cost, weight)
    np.testing.assert_allclose(np.asarray(got[0]), want[0], rtol=2e-6)

  def test_order_of_lambdas_and_degenerate_pools(self):
    gamma, rule_cost, pool, quality, cost, weight = inputs(4, q=50, m=5)
    lam = lambdas(rule_cost, pool, num=30)[::-1].copy()  # descending
    cases = {
        'unsorted': pool,
        'one llm': np.eye(5, dtype=bool)[2],
        'empty pool': np.zeros(5, bool),
    }
    for name, p in cases.items():
      with self.subTest(name):
        assert_matches_numpy(gamma, rule_cost, lam, p, quality, cost, weight)
    zero = lambda_path.rule_path_points(
        gamma, rule_cost, jnp.asarray(lam), pool, quality, cost, 0 * weight
    )
    np.testing.assert_array_equal(np.asarray(zero[0]), 0.0)

  def test_winning_intervals_are_the_hull_vertices(self):
    # An LLM wins somewhere iff it is on the lower hull of (c, gamma),
    # which curves.hull_vertices (the monotone chain) finds independently.
    gamma, rule_cost, pool, _, _, _ = inputs(5, q=200, ties=True)
    *_, wins = lambda_path.winning_intervals(gamma, rule_cost, pool)
    hull = jax.vmap(curves.hull_vertices, in_axes=(None, 0, None))(
        jnp.asarray(rule_cost), -jnp.asarray(gamma), jnp.asarray(pool)
    )
    np.testing.assert_array_equal(np.asarray(wins), np.asarray(hull))

  def test_vmaps_and_jits(self):
    gamma, rule_cost, pool, quality, cost, weight = inputs(6, q=40)
    lam = jnp.asarray(lambdas(rule_cost, pool, num=20))
    fn = jax.jit(
        jax.vmap(
            lambda g: lambda_path.rule_path_points(
                g, rule_cost, lam, pool, quality, cost, weight
            )
        )
    )
    batched = fn(jnp.stack([gamma, gamma[::-1]]))
    one = lambda_path.rule_path_points(
        gamma[::-1], rule_cost, lam, pool, quality, cost, weight
    )
    np.testing.assert_allclose(batched[1][1], one[1], atol=1e-7)


if __name__ == '__main__':
  absltest.main()
