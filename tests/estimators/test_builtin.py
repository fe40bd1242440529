"""The built-in routers (estimators/builtin.py)."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from tests import synthetic
from unirouter_jax.estimators import builtin
from unirouter_jax.evaluation import protocol, views


class BuiltinTest(parameterized.TestCase):

  def test_the_one_mapping_names_every_builtin(self):
    est = builtin.builtin_estimators()
    self.assertEqual(
        set(est),
        {
            'zero_router',
            'knn',
            'uniroute_kmeans',
            'uniroute_soft_kmeans',
            'uniroute_learned_map',
            'uniroute_learned_map_train_psi',
            'uniroute_learned_map_kmeans_k',
            'mlp_oracle',
            'matfac_oracle',
            'mlp_retrained',
            'matfac_retrained',
        },
    )
    for name, e in est.items():
      self.assertEqual(e.name, name)
    self.assertTrue(est['mlp_oracle'].clairvoyant)
    self.assertFalse(est['mlp_retrained'].clairvoyant)
    self.assertFalse(est['uniroute_kmeans'].clairvoyant)

  def test_factories_reuse_one_object_per_arguments(self):
    # Compiled protocols are cached by estimator identity.
    self.assertIs(builtin.uniroute_kmeans(), builtin.uniroute_kmeans())
    self.assertIsNot(
        builtin.uniroute_kmeans(n_init=1), builtin.uniroute_kmeans(n_init=3)
    )

  @parameterized.parameters((1000, 100), (3000, 318), (100, 10), (5, 40))
  def test_k_grids_follow_method_2_4(self, n_train, n_val):
    ks = builtin.kmeans_k_grid(n_train, n_val)
    self.assertLessEqual(len(ks), 8)
    self.assertEqual(ks.max(), min(max(8, n_val // 50), n_train))
    self.assertEqual(ks.min(), min(3, ks.max()))
    kn = builtin.knn_k_grid(n_train, n_val)
    self.assertLessEqual(kn.max(), n_val)
    self.assertEqual(kn.min(), min(5, kn.max()))
    self.assertTrue(np.all(np.diff(ks) > 0) and np.all(np.diff(kn) > 0))

  def test_learned_map_psi_source_option(self):
    with self.assertRaisesRegex(ValueError, 'psi_from'):
      builtin.uniroute_learned_map(psi_from='test')
    data, _, _ = synthetic.cluster_routing_problem(0, n=120, m=4)
    cfg = protocol.ProtocolConfig(num_trials=1, test_llm_fraction=0.5)
    split = jax.tree.map(
        lambda x: x[0], protocol.make_splits(jax.random.key(0), 120, 4, cfg)
    )
    inputs = views.trial_inputs(data, split)
    gammas = []
    for psi_from in ('val', 'train'):
      est = builtin.uniroute_learned_map(
          arch='linear', epochs=1, psi_from=psi_from
      )
      hp = {'k': jnp.asarray(4)}
      params = est.fit(split.key, inputs, hp, 4)
      gamma = est.gamma(params, data.emb_nd[split.test_idx], inputs, 4)
      gammas.append(np.asarray(gamma))
      self.assertTrue(np.isfinite(gammas[-1]).all())
    # Same clusters and routing psi, another map: the estimates differ.
    self.assertGreater(np.abs(gammas[0] - gammas[1]).max(), 1e-6)

  def test_bad_oracle_kind(self):
    with self.assertRaisesRegex(ValueError, 'kind'):
      builtin.clairvoyant_oracle('svm')


if __name__ == '__main__':
  absltest.main()
