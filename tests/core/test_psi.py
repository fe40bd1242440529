"""Tests of unirouter_jax.core.psi (Psi) against hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.core.psi import llm_features, shrunk_psi


def x64():
  if hasattr(jax, 'enable_x64'):
    return jax.enable_x64(True)
  return jax.experimental.enable_x64()  # Older JAX.


# 5 prompts, 3 clusters (+1 padded), 3 LLMs.
ASSIGN = np.array(
    [
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 0],  # Excluded prompt: must not count anywhere.
    ],
    np.float32,
)
ERROR = np.array(
    [[0, 1, 1], [1, 1, 1], [0, 0, 1], [1, 0, 1], [1, 1, 1]], np.float32
)
VISIBLE = np.array(
    [[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0], [1, 1, 1]], bool
)
CLUSTER_MASK = np.array([True, True, True, False])


class FeaturesTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(jax.numpy_rank_promotion('raise'))

  def _check_hand(self, f):
    # LLM 0: cluster 0 errors {0, 1} -> 0.5, cluster 1 {0, 1} -> 0.5.
    # LLM 1: cluster 0 {1} (prompt 1 label missing) -> 1, cluster 1 {0, 0}.
    #        global over prompts 0, 2, 3 -> 1/3.
    # LLM 2: no visible label among counted prompts -> 0.5 everywhere.
    # Cluster 2 is empty and cluster 3 padded -> global.
    g = [0.5, 1 / 3, 0.5]
    want = np.array([[0.5, 1.0, 0.5], [0.5, 0.0, 0.5], g, g], np.float32)
    np.testing.assert_allclose(f.psi_km, want, atol=1e-6)
    np.testing.assert_allclose(f.global_m, g, atol=1e-6)
    np.testing.assert_allclose(
        f.count_km, [[2, 1, 0], [2, 2, 0], [0, 0, 0], [0, 0, 0]], atol=0
    )

  def test_psi_equals_hand_computation(self):
    self._check_hand(
        llm_features(ASSIGN, ERROR, VISIBLE, cluster_mask_k=CLUSTER_MASK)
    )

  def test_psi_hand_computation_x64_and_jit(self):
    with x64():
      fn = jax.jit(llm_features)
      f = fn(
          ASSIGN.astype(np.float64), ERROR, VISIBLE, cluster_mask_k=CLUSTER_MASK
      )
      self.assertEqual(f.psi_km.dtype, jnp.float64)
      self._check_hand(f)

  def test_nan_errors_where_invisible_and_all_masked_never_nan(self):
    err = np.where(VISIBLE, ERROR, np.nan).astype(np.float32)
    self._check_hand(
        llm_features(ASSIGN, err, VISIBLE, cluster_mask_k=CLUSTER_MASK)
    )
    f = llm_features(
        ASSIGN, err, np.zeros_like(VISIBLE), cluster_mask_k=CLUSTER_MASK
    )
    np.testing.assert_allclose(f.psi_km, 0.5, atol=0)
    np.testing.assert_allclose(f.count_km, 0.0, atol=0)

  def test_soft_assignment_is_weighted_mean(self):
    rng = np.random.default_rng(0)
    a = rng.random((30, 4)).astype(np.float32)
    a[:, 3] = 0
    a /= a.sum(1, keepdims=True)
    err = (rng.random((30, 2)) > 0.5).astype(np.float32)
    vis = np.ones((30, 2), bool)
    f = llm_features(a, err, vis, cluster_mask_k=CLUSTER_MASK)
    want = (a.T @ err)[:3] / a.sum(0)[:3, None]
    np.testing.assert_allclose(f.psi_km[:3], want, atol=1e-5)
    np.testing.assert_allclose(f.global_m, err.mean(0), atol=1e-6)

  @parameterized.parameters(0.0, 1.0, 5.0)
  def test_shrinkage(self, strength):
    f = llm_features(ASSIGN, ERROR, VISIBLE, cluster_mask_k=CLUSTER_MASK)
    got = np.asarray(shrunk_psi(f, strength))
    c, p, g = map(np.asarray, (f.count_km, f.psi_km, f.global_m))
    den = c + strength
    want = np.where(
        den > 0, (c * p + strength * g) / np.where(den > 0, den, 1), g
    )
    np.testing.assert_allclose(got, want, atol=1e-6)
    if strength == 0.0:
      np.testing.assert_allclose(got, p, atol=0)
    self.assertTrue(np.isfinite(got).all())

  def test_vmap_over_trials_equals_loop(self):
    vis_s = np.stack([VISIBLE, ~VISIBLE, np.ones_like(VISIBLE)])
    batched = jax.vmap(
        lambda v: llm_features(ASSIGN, ERROR, v, cluster_mask_k=CLUSTER_MASK)
    )(vis_s)
    for i, v in enumerate(vis_s):
      one = llm_features(ASSIGN, ERROR, v, cluster_mask_k=CLUSTER_MASK)
      np.testing.assert_allclose(batched.psi_km[i], one.psi_km, atol=1e-6)


if __name__ == '__main__':
  absltest.main()
