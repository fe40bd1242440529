"""Tests of unirouter_jax.estimators.baselines: ZeroRouter hull, K-NN, oracle."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.estimators.baselines import (
    knn_gamma,
    oracle_gamma,
    zero_router_points,
)


def brute_knn(q, v, err, vis, k):
  d = ((q[:, None, :].astype(np.float64) - v[None]) ** 2).sum(-1)
  out = np.zeros((len(q), err.shape[1]))
  glob = np.where(
      vis.any(0), (err * vis).sum(0) / np.maximum(vis.sum(0), 1), 0.5
  )
  for i in range(len(q)):
    nn = np.argsort(d[i], kind='stable')[:k]
    for j in range(err.shape[1]):
      lab = vis[nn, j]
      out[i, j] = err[nn, j][lab].mean() if lab.any() else glob[j]
  return out


class BaselinesTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(jax.numpy_rank_promotion('raise'))

  def test_zero_router_hull_by_hand(self):
    #            A    B    C     D    E    F    G (= B)
    cost = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 0.5, 2.0], np.float32)
    err = np.array([0.5, 0.3, 0.35, 0.1, 0.2, 0.0, 0.3], np.float32)
    pool = np.array([1, 1, 1, 1, 1, 0, 1], bool)
    # Lower hull A -> B -> D (slopes -.2, -.1); C above B-D; E costs more
    # than D for more error; F outside the pool; G duplicates B.
    tq = np.arange(7, dtype=np.float32)
    tc = 10 + np.arange(7, dtype=np.float32)
    c, q, mask = zero_router_points(err, cost, tq, tc, pool)
    np.testing.assert_array_equal(mask, [1, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(c, tc)
    np.testing.assert_array_equal(q, tq)
    # Equal cheapest costs: the lower error one starts the hull.
    cost2 = np.array([1.0, 1.0, 2.0], np.float32)
    err2 = np.array([0.5, 0.4, 0.1], np.float32)
    _, _, mask2 = zero_router_points(err2, cost2, err2, cost2, np.ones(3, bool))
    np.testing.assert_array_equal(mask2, [0, 1, 1])

  @parameterized.parameters(1, 3, 5)
  def test_knn_matches_brute_force(self, k):
    rng = np.random.default_rng(k)
    v = (3 * rng.normal(size=(25, 3))).astype(np.float32)  # Not normalised.
    q = rng.normal(size=(10, 3)).astype(np.float32)
    err = (rng.random((25, 4)) > 0.5).astype(np.float32)
    vis = rng.random((25, 4)) > 0.3
    vis[:, 3] = False  # An LLM with no label at all -> 0.5.
    got = knn_gamma(q, v, err, vis, k, k_max=5, batch_size=4)
    np.testing.assert_allclose(got, brute_knn(q, v, err, vis, k), atol=1e-6)

  def test_knn_traced_k_equals_python_k(self):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(12, 2)).astype(np.float32)
    err = rng.random((12, 3)).astype(np.float32)
    vis = np.ones((12, 3), bool)
    ks = jnp.array([1, 2, 4])
    batched = jax.vmap(lambda k: knn_gamma(v, v, err, vis, k, k_max=4))(ks)
    for i, k in enumerate([1, 2, 4]):
      one = knn_gamma(v, v, err, vis, k, k_max=4)
      np.testing.assert_allclose(batched[i], one, atol=1e-6)
    with self.assertRaisesRegex(ValueError, 'k_max'):
      knn_gamma(v, v, err, vis, 2, k_max=13)
    with self.assertRaisesRegex(ValueError, 'k:'):
      knn_gamma(v, v, err, vis, 5, k_max=4)

  def test_oracle_gamma(self):
    quality = np.array([[1.0, 0.0, 0.3]], np.float32)
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(
        oracle_gamma(quality, mask), [[0.0, 1.0, 1.0]], atol=0
    )


if __name__ == '__main__':
  absltest.main()
