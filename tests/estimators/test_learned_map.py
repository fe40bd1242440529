"""Tests of unirouter_jax.estimators.learned_map on data with a known cluster map."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from jax.flatten_util import ravel_pytree
from jax.test_util import check_grads

from unirouter_jax.core import kmeans
from unirouter_jax.estimators import learned_map as lm

_K, _D, _M = 4, 8, 6

_fit = jax.jit(lm.fit_learned_map, static_argnames=('arch', 'epochs'))


@functools.cache
def _blobs(n: int = 1536, seed: int = 0):
  """4 Gaussian blobs in 8-d; LLM h errs w.p. psi[c(x), h] (Bernoulli).

  Returns host arrays: emb_nd, cluster_n, error_nm, psi_km.
  """
  rng = np.random.default_rng(seed)
  centers_kd = 4.0 * np.eye(_K, _D)
  cluster_n = rng.integers(0, _K, n)
  emb_nd = centers_kd[cluster_n] + rng.normal(size=(n, _D))
  # Each cluster has its own pattern of strong/weak LLMs.
  psi_km = np.full((_K, _M), 0.5)
  psi_km[0, :3], psi_km[1, 3:] = 0.05, 0.05
  psi_km[2, ::2], psi_km[3, 1::2] = 0.95, 0.95
  psi_km[0, 3:], psi_km[1, :3] = 0.9, 0.9
  psi_km[2, 1::2], psi_km[3, ::2] = 0.1, 0.1
  error_nm = (rng.uniform(size=(n, _M)) < psi_km[cluster_n]).astype(np.float32)
  return (
      emb_nd.astype(np.float32),
      cluster_n,
      error_nm,
      psi_km.astype(np.float32),
  )


def _inputs(n_train: int = 1024):
  emb_nd, _, error_nm, psi_km = _blobs()
  return dict(
      emb_nd=jnp.asarray(emb_nd),
      train_idx=jnp.arange(n_train),
      error_nm=jnp.asarray(error_nm),
      visible_nm=jnp.ones(error_nm.shape, bool),
      llm_mask_m=jnp.ones(_M, bool),
      psi_km=jnp.asarray(psi_km),
      cluster_mask_k=jnp.ones(_K, bool),
  )


# The paper's lr for the MLP; the linear map needs a larger one in 5 epochs.
_LR = {'linear': 2e-2, 'mlp': 5e-3}


@functools.cache
def _blob_fit(arch: str):
  return _fit(jax.random.key(0), **_inputs(), lr=_LR[arch], arch=arch, epochs=5)


class LearnedMapTest(parameterized.TestCase):

  @parameterized.parameters('linear', 'mlp')
  def test_loss_decreases(self, arch):
    loss_t = np.asarray(_blob_fit(arch).loss_t)
    self.assertEqual(loss_t.shape, (5 * (1024 // 64),))
    self.assertTrue(np.isfinite(loss_t).all())
    # Margin 0.1 nats: the first steps sit at 0.35-1.0 nats, the Bayes loss
    # of these labels is 0.26.
    self.assertLess(loss_t[-10:].mean(), loss_t[:10].mean() - 0.1)

  @parameterized.parameters('linear', 'mlp')
  def test_recovers_true_clusters(self, arch):
    emb_nd, cluster_n, _, _ = _blobs()
    # psi fixes the labelling of the clusters, so no permutation is needed.
    phi_qk = lm.cluster_map(
        _blob_fit(arch), emb_nd[1024:], jnp.ones(_K, bool), arch=arch
    )
    np.testing.assert_allclose(phi_qk.sum(-1), 1.0, atol=1e-5)
    accuracy = np.mean(np.argmax(phi_qk, -1) == cluster_n[1024:])
    self.assertGreater(accuracy, 0.9)

  @parameterized.parameters('linear', 'mlp')
  def test_grads_match_finite_differences(self, arch):
    with jax.enable_x64(True):
      inputs = _inputs()
      init = functools.partial(lm.ClusterNet(_K, arch).init, train=False)
      variables = jax.jit(init)(jax.random.key(1), jnp.zeros((1, _D)))
      variables = jax.tree.map(lambda x: x.astype(jnp.float64), variables)
      rows = slice(0, 32)
      batch = (
          inputs['emb_nd'][rows].astype(jnp.float64),
          inputs['error_nm'][rows].astype(jnp.float64),
          inputs['visible_nm'][rows],
          # psi in [0.05, 0.95] keeps gamma off the clipping boundaries.
          inputs['psi_km'].astype(jnp.float64),
          inputs['cluster_mask_k'],
      )

      # One flat vector: check_grads' eager bookkeeping then runs on a
      # single array instead of compiling small ops per parameter shape.
      flat_p, unravel = ravel_pytree(variables['params'])

      @jax.jit
      def loss(flat_p):
        return lm.learned_map_loss(
            unravel(flat_p),
            variables.get('batch_stats', {}),
            *batch,
            arch=arch,
            train=True,
        )[0]

      # Tolerance 1e-4 (atol and rtol) on central differences in float64;
      # a step of 1e-6 makes crossing a ReLU kink unlikely.
      check_grads(
          loss,
          (flat_p,),
          order=1,
          modes=['rev'],
          atol=1e-4,
          rtol=1e-4,
          eps=1e-6,
      )

  def test_vmapped_learning_rates_equal_separate_runs(self):
    lrs = [1e-3, _LR['mlp'], 2e-2]
    inputs = _inputs()
    many = jax.jit(
        jax.vmap(
            lambda lr: lm.fit_learned_map(
                jax.random.key(0), **inputs, lr=lr, arch='mlp', epochs=5
            )
        )
    )(jnp.asarray(lrs))
    for i, lr in enumerate(lrs):
      # A Python float, as in _blob_fit, reuses its compiled fit.
      single = _fit(jax.random.key(0), **inputs, lr=lr, arch='mlp', epochs=5)
      # Tolerance 1e-5 (atol and rtol): batched vs unbatched kernels.
      np.testing.assert_allclose(many.loss_t[i], single.loss_t, atol=1e-5)
      jax.tree.map(
          lambda a, b, i=i: np.testing.assert_allclose(
              a[i], b, atol=1e-5, rtol=1e-5
          ),
          many.variables,
          single.variables,
      )

  def test_batchnorm_train_vs_eval(self):
    inputs = _inputs()
    net = lm.ClusterNet(_K, 'mlp')
    emb_nd = inputs['emb_nd']
    emb_bd = emb_nd[:64]
    args = (
        inputs['error_nm'][:64],
        inputs['visible_nm'][:64],
        inputs['psi_km'],
        inputs['cluster_mask_k'],
    )

    @jax.jit
    def stats_after_step(key):
      variables = net.init(key, emb_bd[:1], train=False)
      params, stats = variables['params'], variables['batch_stats']
      loss = functools.partial(lm.learned_map_loss, arch='mlp')
      return (
          stats,
          loss(params, stats, emb_bd, *args, train=True)[1],
          loss(params, stats, emb_bd, *args, train=False)[1],
      )

    stats, train_stats, eval_stats = stats_after_step(jax.random.key(0))
    # Training updates the running averages: 0.9 * old + 0.1 * batch (1e-5).
    np.testing.assert_allclose(
        train_stats['BatchNorm_0']['mean'], 0.1 * emb_bd.mean(0), atol=1e-5
    )
    np.testing.assert_allclose(
        train_stats['BatchNorm_0']['var'],
        0.9 + 0.1 * emb_bd.var(0),
        rtol=1e-5,
    )
    # Eval mode leaves them untouched (exactly).
    jax.tree.map(np.testing.assert_array_equal, eval_stats, stats)

    fitted = _blob_fit('mlp')

    @jax.jit
    def eval_and_train_logits(x_bd):
      return (
          net.apply(fitted.variables, x_bd, train=False),
          net.apply(fitted.variables, x_bd, train=True, mutable=True)[0],
      )

    # Two batches of the same shape (one compile) sharing their first 8 rows.
    eval_a, train_a = eval_and_train_logits(emb_nd[:256])
    eval_b, train_b = eval_and_train_logits(
        jnp.concatenate([emb_nd[:8], emb_nd[-248:]])
    )
    # Eval outputs of a row do not depend on the rest of the batch (1e-5) ...
    np.testing.assert_allclose(eval_a[:8], eval_b[:8], atol=1e-5)
    # ... whereas train-mode outputs do (batch statistics differ).
    self.assertGreater(np.abs(train_a[:8] - train_b[:8]).max(), 1e-3)

  def test_padded_clusters_equal_unpadded(self):
    # The MLP shares the property (same last-layer init), but a second
    # compiled fit would cost ~10 s of test time.
    arch = 'linear'
    inputs = _inputs()
    k_max = _K + 3
    padded = dict(
        inputs,
        # NaN in padded rows must not leak (they are masked, not multiplied).
        psi_km=jnp.concatenate(
            [inputs['psi_km'], jnp.full((3, _M), jnp.nan)], 0
        ),
        cluster_mask_k=jnp.arange(k_max) < _K,
    )
    fit_p = _fit(jax.random.key(0), **padded, lr=_LR[arch], arch=arch, epochs=5)
    fit_u = _blob_fit(arch)
    # Tolerance 1e-5: only the width of the last matmul differs.
    np.testing.assert_allclose(fit_p.loss_t, fit_u.loss_t, atol=1e-5)
    emb_qd = inputs['emb_nd'][1024:]
    phi_p = lm.cluster_map(fit_p, emb_qd, padded['cluster_mask_k'], arch=arch)
    phi_u = lm.cluster_map(fit_u, emb_qd, inputs['cluster_mask_k'], arch=arch)
    self.assertFalse(np.isnan(phi_p).any())
    np.testing.assert_array_equal(phi_p[:, _K:], 0.0)  # exactly zero
    np.testing.assert_allclose(phi_p[:, :_K], phi_u, atol=1e-5)

  def test_all_padded_row_is_finite(self):
    logits_bk = jnp.arange(6.0).reshape(2, 3)
    mask_k = jnp.zeros(3, bool)

    @jax.jit
    def softmax_and_grad(z):
      f = lambda z: kmeans.masked_softmax(z, mask_k)
      return f(z), jax.grad(lambda z: f(z).sum())(z)

    phi_bk, grad_bk = softmax_and_grad(logits_bk)
    np.testing.assert_array_equal(phi_bk, 0.0)  # exactly
    self.assertTrue(np.isfinite(grad_bk).all())

  def test_masked_labels_are_ignored(self):
    inputs = _inputs()
    hidden = np.zeros(inputs['error_nm'].shape, bool)
    hidden[:, 0] = True  # LLM 0's labels are invisible ...
    llm_mask_m = jnp.arange(_M) != 1  # ... and LLM 1 is not a training LLM.
    args = dict(inputs, visible_nm=jnp.asarray(~hidden), llm_mask_m=llm_mask_m)
    scrambled = inputs['error_nm'].at[:, :2].set(jnp.nan)
    fits = [
        _fit(
            jax.random.key(0),
            **dict(args, error_nm=error_nm),
            lr=2e-2,
            arch='linear',
            epochs=5,
        )
        for error_nm in (inputs['error_nm'], scrambled)
    ]
    # Exactly equal: masked labels never enter the arithmetic.
    np.testing.assert_array_equal(fits[0].loss_t, fits[1].loss_t)
    self.assertTrue(np.isfinite(fits[1].loss_t).all())

  def test_bad_inputs_raise(self):
    inputs = _inputs()
    with self.assertRaisesRegex(ValueError, 'arch'):
      lm.fit_learned_map(jax.random.key(0), **inputs, lr=1e-3, arch='cnn')
    with self.assertRaisesRegex(ValueError, 'psi_km'):
      lm.fit_learned_map(
          jax.random.key(0),
          **dict(inputs, psi_km=inputs['psi_km'][:2]),
          lr=1e-3,
      )

  def test_batch_stats_keep_dtype_under_x64(self):
    # Under JAX_ENABLE_X64 the float64 batch moments must not promote the
    # float32 running averages: they are part of the training scan's carry.
    with jax.enable_x64(True):
      inputs = _inputs()
      net = lm.ClusterNet(_K, 'mlp')

      @jax.jit
      def step_stats(key):
        variables = net.init(key, jnp.zeros((1, _D)), train=False)
        return (
            variables['batch_stats'],
            lm.learned_map_loss(
                variables['params'],
                variables['batch_stats'],
                inputs['emb_nd'][:64].astype(jnp.float64),
                inputs['error_nm'][:64].astype(jnp.float64),
                inputs['visible_nm'][:64],
                inputs['psi_km'].astype(jnp.float64),
                inputs['cluster_mask_k'],
                arch='mlp',
            )[1],
        )

      before, after = step_stats(jax.random.key(0))
      self.assertEqual(
          jax.tree.map(lambda x: x.dtype, before),
          jax.tree.map(lambda x: x.dtype, after),
      )


if __name__ == '__main__':
  absltest.main()
