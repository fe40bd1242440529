"""The leakage firewall: what each party may see (evaluation/views.py).

Poisoning what a view must not show (labels and the label mask of test
prompts, and of test LLMs outside the probe set) leaves the view, and so
every estimator fitted on it (LearnedMap included), exactly unchanged.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from tests import synthetic
from unirouter_jax.estimators import builtin
from unirouter_jax.evaluation import protocol, views

CFG = protocol.ProtocolConfig(num_trials=1, test_llm_fraction=0.5)


def _setup():
  data, _, _ = synthetic.cluster_routing_problem(0, n=200, m=6)
  split = jax.tree.map(
      lambda x: x[0], protocol.make_splits(jax.random.key(1), 200, 6, CFG)
  )
  return data, split


def _poison(data, where_nm, seed=0):
  """Labels replaced by NaN or noise and the mask flipped at ``where_nm``."""
  rng = np.random.default_rng(seed)
  noise = rng.choice([np.nan, 0.0, 1.0, 0.37], size=where_nm.shape)
  q = np.where(where_nm, noise, np.asarray(data.quality_nm))
  mask = np.where(where_nm, ~np.asarray(data.label_mask_nm), data.label_mask_nm)
  return data.replace(
      quality_nm=jnp.asarray(q, jnp.float32), label_mask_nm=jnp.asarray(mask)
  )


def _rows(idx, n):
  out = np.zeros((n,), bool)
  out[np.asarray(idx)] = True
  return out


def _assert_same(test, a, b):
  for f in ('error_nm', 'visible_nm', 'cost_m', 'pool_m', 'train_llm_m'):
    np.testing.assert_array_equal(
        np.asarray(getattr(a, f)), np.asarray(getattr(b, f)), err_msg=f
    )


class ViewsTest(parameterized.TestCase):

  def test_test_view_never_shows_test_prompts_or_test_llms_on_train(self):
    data, split = _setup()
    n = data.num_prompts
    test_n = _rows(split.test_idx, n)
    train_n = _rows(split.train_idx, n)
    test_m = np.asarray(split.test_llm_m)
    hidden = test_n[:, None] | (train_n[:, None] & test_m[None, :])
    poisoned = _poison(data, hidden)
    a = views.trial_inputs(data, split)
    b = views.trial_inputs(poisoned, split)
    _assert_same(self, a, b)
    # ... and the probe labels of the test LLMs are visible (the method).
    val_n = _rows(split.val_idx, n)
    vis = np.asarray(a.visible_nm)
    self.assertTrue(vis[val_n][:, test_m].any())
    self.assertFalse(vis[test_n].any())

  def test_selection_view_never_shows_test_llms_or_probe_or_test_prompts(self):
    data, split = _setup()
    n = data.num_prompts
    train_n = _rows(split.train_idx, n)
    test_m = np.asarray(split.test_llm_m)
    hidden = (~train_n)[:, None] | test_m[None, :]
    a = views.selection_inputs(data, split)
    b = views.selection_inputs(_poison(data, hidden, seed=1), split)
    _assert_same(self, a, b)
    self.assertFalse(np.asarray(a.visible_nm)[:, test_m].any())

  def test_clairvoyant_view_still_hides_test_prompts(self):
    data, split = _setup()
    hidden = _rows(split.test_idx, data.num_prompts)[:, None] & np.ones(
        (1, data.num_llms), bool
    )
    a = views.trial_inputs(data, split, clairvoyant=True)
    b = views.trial_inputs(
        _poison(data, hidden, seed=2), split, clairvoyant=True
    )
    _assert_same(self, a, b)

  @parameterized.parameters('uniroute_kmeans', 'knn', 'uniroute_learned_map')
  def test_fitted_estimators_unchanged_by_poison(self, name):
    data, split = _setup()
    n = data.num_prompts
    hidden = _rows(split.test_idx, n)[:, None] | (
        _rows(split.train_idx, n)[:, None]
        & np.asarray(split.test_llm_m)[None, :]
    )
    est = builtin.builtin_estimators(epochs_scale=0.2)[name]
    hp = {k: jnp.asarray(v[0]) for k, v in est.grid(120, 20).items()}
    pad = int(np.max(est.grid(120, 20)[est.pad_key])) if est.pad_key else 1
    emb_q = data.emb_nd[split.test_idx]
    out = []
    for d in (data, _poison(data, hidden, seed=3)):
      inputs = views.trial_inputs(d, split)
      params = est.fit(split.key, inputs, hp, pad)
      out.append(np.asarray(est.gamma(params, emb_q, inputs, pad)))
    np.testing.assert_array_equal(out[0], out[1])

  def test_eval_set_counts_prompts_labelled_for_every_pool_llm(self):
    data, split = _setup()
    mask = np.asarray(data.label_mask_nm).copy()
    first = int(split.test_idx[0])
    pool = np.asarray(split.test_llm_m)
    mask[first, np.flatnonzero(pool)[0]] = False
    ev = views.eval_set(
        data.replace(label_mask_nm=jnp.asarray(mask)),
        split.test_idx,
        split.test_llm_m,
    )
    w = np.asarray(ev.weight_q)
    self.assertEqual(w[0], 0.0)
    self.assertEqual(w[1:].sum(), len(w) - 1)


if __name__ == '__main__':
  absltest.main()
