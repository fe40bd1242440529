"""The MLP / MatFac routers: the retrained ones are fair, unlike the oracles."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from tests import synthetic
from unirouter_jax.estimators import builtin
from unirouter_jax.evaluation import protocol, views

CFG = protocol.ProtocolConfig(num_trials=1)


class RetrainedTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.data, _, _ = synthetic.cluster_routing_problem(0, n=300, m=6)
    splits = protocol.make_splits(jax.random.key(0), 300, 6, CFG)
    self.split = jax.tree.map(lambda x: x[0], splits)

  def _gamma(self, est, data):
    inputs = views.trial_inputs(data, self.split, clairvoyant=est.clairvoyant)
    params = est.fit(jax.random.key(1), inputs, {'lr': 1e-3}, 1)
    return np.asarray(
        est.gamma(params, data.emb_nd[self.split.test_idx], inputs, 1)
    )

  def _poisoned(self, rows_n, llms_m, also_nm=False):
    noise = np.random.default_rng(0).uniform(size=self.data.quality_nm.shape)
    hidden = (rows_n[:, None] & llms_m[None, :]) | also_nm
    return self.data.replace(
        quality_nm=jnp.where(hidden, jnp.asarray(noise, jnp.float32),
                             self.data.quality_nm)
    )  # fmt: skip

  @parameterized.parameters('mlp', 'matfac')
  def test_retrained_sees_only_what_a_fair_router_sees(self, kind):
    est = builtin.retrained(kind, epochs=3)
    self.assertFalse(est.clairvoyant)
    n = self.data.num_prompts
    train_n = np.zeros(n, bool)
    train_n[np.asarray(self.split.train_idx)] = True
    test_n = np.zeros(n, bool)
    test_n[np.asarray(self.split.test_idx)] = True
    test_m = np.asarray(self.split.test_llm_m)
    base = self._gamma(est, self.data)
    # The test LLMs on the training prompts, and every test prompt: hidden.
    hidden = self._poisoned(train_n, test_m, test_n[:, None])
    np.testing.assert_allclose(self._gamma(est, hidden), base, atol=1e-6)
    # The test LLMs' probe labels are what it learns them from.
    val_n = np.zeros(n, bool)
    val_n[np.asarray(self.split.val_idx)] = True
    changed = self._gamma(est, self._poisoned(val_n, test_m))
    self.assertGreater(np.abs(changed - base)[:, test_m].max(), 1e-3)

  def test_clairvoyant_oracle_does_see_test_llms_on_training_prompts(self):
    est = builtin.clairvoyant_oracle('mlp', epochs=3)
    n = self.data.num_prompts
    train_n = np.zeros(n, bool)
    train_n[np.asarray(self.split.train_idx)] = True
    test_m = np.asarray(self.split.test_llm_m)
    base = self._gamma(est, self.data)
    changed = self._gamma(est, self._poisoned(train_n, test_m))
    self.assertGreater(np.abs(changed - base).max(), 1e-3)

  def test_unknown_kind_is_refused(self):
    with self.assertRaisesRegex(ValueError, "kind: expected 'mlp'"):
      builtin.retrained('svm')


if __name__ == '__main__':
  absltest.main()
