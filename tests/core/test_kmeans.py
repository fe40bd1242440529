"""Tests of unirouter_jax.core.kmeans against a brute-force NumPy Lloyd."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.core.kmeans import (
    assign,
    kmeans,
    kmeans_plusplus,
    lloyd,
    one_hot_assign,
    responsibilities,
    soft_kmeans,
)


def x64():
  if hasattr(jax, 'enable_x64'):
    return jax.enable_x64(True)
  return jax.experimental.enable_x64()  # Older JAX.


# Every test uses [60, 4] embeddings and k_max=5 where it can, so the jitted
# functions compile once for the whole file.
N, D, K_MAX = 60, 4, 5


def blobs(seed=0, scale=0.3):
  rng = np.random.default_rng(seed)
  centres = np.array(
      [[0.0, 0.0, 0.0, 0.0], [6.0, 6.0, 0.0, 0.0], [-6.0, 6.0, 3.0, 1.0]]
  )
  n_per = N // 3
  emb = np.concatenate(
      [c + scale * rng.normal(size=(n_per, D)) for c in centres]
  )
  labels = np.repeat(np.arange(3), n_per)
  return emb.astype(np.float32), labels, centres


def numpy_lloyd(emb, weight, init, max_iter=100, tol=1e-4):
  """Brute-force weighted Lloyd with scikit-learn's stopping rule."""
  emb = emb.astype(np.float64)
  c = init.astype(np.float64).copy()
  w = weight.astype(np.float64)
  mean = (w[:, None] * emb).sum(0) / w.sum()
  tol_abs = tol * np.mean((w[:, None] * (emb - mean) ** 2).sum(0) / w.sum())
  it = 0
  while it < max_iter:
    d = ((emb[:, None, :] - c[None]) ** 2).sum(-1)
    a = d.argmin(1)
    new = c.copy()
    for j in range(len(c)):
      wj = w * (a == j)
      if wj.sum() > 0:
        new[j] = (wj[:, None] * emb).sum(0) / wj.sum()
    shift = ((new - c) ** 2).sum()
    c = new
    it += 1
    if shift <= tol_abs:
      break
  d = ((emb[:, None, :] - c[None]) ** 2).sum(-1)
  return c, it, float((w * d.min(1)).sum())


class KMeansTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(jax.numpy_rank_promotion('raise'))

  def _data(self, seed=1):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(N, D)).astype(np.float32)
    weight = (rng.random(N) > 0.2).astype(np.float32)
    return emb, weight

  @parameterized.parameters(2, 4, 5)
  def test_lloyd_matches_numpy_reference(self, k):
    emb, weight = self._data()
    init = kmeans_plusplus(jax.random.key(k), emb, weight, k, k_max=K_MAX)
    got = lloyd(emb, weight, init, jnp.arange(K_MAX) < k)
    want_c, want_it, want_inertia = numpy_lloyd(
        emb, weight, np.asarray(init)[:k]
    )
    np.testing.assert_allclose(got.centroids_kd[:k], want_c, atol=1e-5)
    np.testing.assert_array_equal(got.centroids_kd[k:], 0.0)
    self.assertEqual(int(got.n_iter), want_it)
    np.testing.assert_allclose(got.inertia, want_inertia, rtol=1e-5)

  def test_lloyd_matches_numpy_reference_x64(self):
    with x64():
      emb, weight = self._data(2)
      emb = emb.astype(np.float64)
      init = kmeans_plusplus(jax.random.key(0), emb, weight, 3, k_max=5)
      self.assertEqual(init.dtype, jnp.float64)
      got = lloyd(emb, weight, init, jnp.arange(5) < 3)
      want_c, want_it, _ = numpy_lloyd(emb, weight, np.asarray(init)[:3])
      np.testing.assert_allclose(got.centroids_kd[:3], want_c, atol=1e-10)
      self.assertEqual(int(got.n_iter), want_it)
      np.testing.assert_array_equal(got.centroids_kd[3:], 0.0)

  def test_plusplus_picks_weighted_points_and_pads(self):
    emb, weight = self._data()
    c = np.asarray(kmeans_plusplus(jax.random.key(3), emb, weight, 3, k_max=5))
    np.testing.assert_array_equal(c[3:], 0.0)
    chosen = emb[weight > 0]
    for row in c[:3]:  # Each centre is an actual weighted point (exact).
      self.assertEqual(np.min(np.abs(chosen - row).sum(1)), 0.0)
    self.assertLen({tuple(r) for r in c[:3]}, 3)

  def test_recovers_blobs_up_to_permutation(self):
    emb, labels, centres = blobs()
    cl = kmeans(
        jax.random.key(0), emb, np.ones(len(emb), np.float32), 3, k_max=K_MAX
    )
    found = np.asarray(cl.centroids_kd[:3])
    perm = [int(np.argmin(((found - c) ** 2).sum(1))) for c in centres]
    self.assertCountEqual(perm, [0, 1, 2])
    np.testing.assert_allclose(found[perm], centres, atol=0.2)
    a = np.asarray(assign(jnp.asarray(emb), cl))
    np.testing.assert_array_equal(a, np.asarray(perm)[labels])

  def test_padded_equals_unpadded(self):
    emb, weight = self._data()
    small = kmeans(jax.random.key(5), emb, weight, 3, k_max=3)
    big = kmeans(jax.random.key(5), emb, weight, 3, k_max=K_MAX)
    np.testing.assert_allclose(
        big.centroids_kd[:3], small.centroids_kd, atol=1e-6
    )
    np.testing.assert_array_equal(big.centroids_kd[3:], 0.0)
    np.testing.assert_allclose(big.inertia, small.inertia, rtol=1e-6)
    np.testing.assert_array_equal(
        assign(jnp.asarray(emb), big), assign(jnp.asarray(emb), small)
    )

  def test_vmap_over_keys_and_k_equals_loop(self):
    emb, weight = self._data()
    seeds, ks = [0, 1, 2], [1, 3, 5]
    keys = jnp.stack([jax.random.key(s) for s in seeds for _ in ks])
    k_s = jnp.array([k for _ in seeds for k in ks])
    fn = functools.partial(kmeans, emb_nd=emb, weight_n=weight, k_max=K_MAX)
    batched = jax.vmap(lambda key, k: fn(key, k=k))(keys, k_s)
    for i, (s, k) in enumerate(itertools.product(seeds, ks)):
      one = kmeans(jax.random.key(s), emb, weight, k, k_max=K_MAX)
      np.testing.assert_allclose(
          batched.centroids_kd[i], one.centroids_kd, atol=1e-5
      )
      np.testing.assert_allclose(batched.inertia[i], one.inertia, rtol=1e-5)

  def test_jit_equals_eager(self):
    # The public functions are jitted; disable_jit runs them op by op.
    emb, weight = self._data()
    emb, weight = emb[:12, :2], weight[:12]
    init = np.asarray(
        kmeans_plusplus(jax.random.key(4), emb, weight, 2, k_max=3)
    )
    mask = jnp.arange(3) < 2
    a = lloyd(emb, weight, init, mask)
    with jax.disable_jit():
      b = lloyd(emb, weight, init, mask)
    np.testing.assert_allclose(a.centroids_kd, b.centroids_kd, atol=1e-6)
    self.assertEqual(int(a.n_iter), int(b.n_iter))
    np.testing.assert_allclose(a.inertia, b.inertia, rtol=1e-6)

  def test_soft_kmeans_large_beta_equals_lloyd(self):
    emb, _, _ = blobs(scale=1.0)
    w = np.ones(len(emb), np.float32)
    mask = jnp.arange(K_MAX) < 3
    init = kmeans_plusplus(jax.random.key(1), emb, w, 3, k_max=K_MAX)
    hard = lloyd(emb, w, init, mask)
    soft = soft_kmeans(emb, w, init, mask, 1e4)
    np.testing.assert_allclose(soft.centroids_kd, hard.centroids_kd, atol=1e-5)
    # A small beta pulls the centres together (all towards the mean).
    blurred = soft_kmeans(emb, w, init, mask, 1e-4)
    self.assertLess(
        float(jnp.ptp(blurred.centroids_kd[:3, 0])),
        float(jnp.ptp(hard.centroids_kd[:3, 0])),
    )

  def test_responsibilities_and_one_hot(self):
    emb, _, _ = blobs()
    cl = kmeans(
        jax.random.key(0), emb, np.ones(len(emb), np.float32), 3, k_max=K_MAX
    )
    r = responsibilities(jnp.asarray(emb), cl, 0.5)
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(r[:, 3:], 0.0)
    self.assertTrue(np.isfinite(np.asarray(r)).all())
    oh = one_hot_assign(jnp.asarray(emb), cl)
    np.testing.assert_array_equal(oh.argmax(1), assign(jnp.asarray(emb), cl))
    np.testing.assert_array_equal(oh.sum(1), 1.0)
    # Huge distances with a huge beta stay finite (masked softmax).
    far = responsibilities(jnp.asarray(emb) * 1e3, cl, 1e3)
    self.assertTrue(np.isfinite(np.asarray(far)).all())

  def test_empty_cluster_keeps_its_centroid(self):
    emb = np.array([[0.0], [0.1], [1.0], [1.1]], np.float32)
    init = np.array([[0.0], [1.0], [50.0]], np.float32)
    got = lloyd(emb, np.ones(4, np.float32), init, jnp.ones(3, bool))
    np.testing.assert_allclose(
        got.centroids_kd[:, 0], [0.05, 1.05, 50.0], atol=1e-6
    )

  @parameterized.parameters(
      dict(k=4, k_max=5, match='k: expected at most'),
      dict(k=6, k_max=5, match='k: expected 1 <= k'),
      dict(k=0, k_max=5, match='k: expected 1 <= k'),
  )
  def test_bad_host_input_raises(self, k, k_max, match):
    emb = np.zeros((5, 2), np.float32)
    weight = np.array([1, 1, 1, 0, 0], np.float32)
    with self.assertRaisesRegex(ValueError, match):
      kmeans(jax.random.key(0), emb, weight, k, k_max=k_max)

  def test_bad_weight_shape_raises(self):
    with self.assertRaisesRegex(ValueError, 'weight_n'):
      kmeans(jax.random.key(0), np.zeros((5, 2)), np.ones(4), 2, k_max=2)


if __name__ == '__main__':
  absltest.main()
