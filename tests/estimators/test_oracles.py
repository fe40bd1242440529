"""Tests of the clairvoyant MLP / MatFac oracles in unirouter_jax.estimators.oracles."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.estimators import oracles

_D, _M = 8, 5
_N_TRAIN, _N_VAL = 512, 256


@functools.cache
def _data(seed: int = 0):
  """Labels depend on x: P[LLM m correct | x] = sigmoid(2 x.w_m + b_m)."""
  rng = np.random.default_rng(seed)
  n = _N_TRAIN + _N_VAL
  emb_nd = rng.normal(size=(n, _D)).astype(np.float32)
  w_dm = rng.normal(size=(_D, _M)) / np.sqrt(_D)
  p_correct_nm = 1 / (1 + np.exp(-(2 * emb_nd @ w_dm + rng.normal(size=_M))))
  correct_nm = rng.uniform(size=(n, _M)) < p_correct_nm
  return dict(
      emb_nd=jnp.asarray(emb_nd),
      train_idx=jnp.arange(_N_TRAIN),
      val_idx=jnp.arange(_N_TRAIN, n),
      error_nm=jnp.asarray(1.0 - correct_nm, jnp.float32),
      visible_nm=jnp.ones((n, _M), bool),
      llm_mask_m=jnp.ones(_M, bool),
  )


@functools.cache
def _jitted(kind: str):
  return jax.jit(
      functools.partial(oracles.fit_oracle, kind=kind, size=16),
      static_argnames=('epochs', 'batch_size', 'patience'),
  )


@functools.cache
def _fitted(kind: str, lr: float = 1e-2):
  return _jitted(kind)(jax.random.key(0), **_data(), lr=lr, epochs=30)


def _val_loss(gamma_qm, error_qm):
  gamma_qm = np.clip(np.asarray(gamma_qm, np.float64), 1e-7, 1 - 1e-7)
  error_qm = np.asarray(error_qm, np.float64)
  return -np.mean(
      error_qm * np.log(gamma_qm) + (1 - error_qm) * np.log(1 - gamma_qm)
  )


class OraclesTest(parameterized.TestCase):

  @parameterized.parameters('mlp', 'matfac')
  def test_beats_constant_predictor(self, kind):
    data = _data()
    fitted = _fitted(kind)
    error_nm = np.asarray(data['error_nm'])
    const_m = error_nm[:_N_TRAIN].mean(0)
    const_loss = _val_loss(
        np.broadcast_to(const_m, (_N_VAL, _M)), error_nm[_N_TRAIN:]
    )
    gamma_qm = oracles.oracle_gamma(
        fitted, data['emb_nd'][_N_TRAIN:], kind=kind
    )
    self.assertEqual(gamma_qm.shape, (_N_VAL, _M))
    self.assertTrue(((gamma_qm > 0) & (gamma_qm < 1)).all())
    oracle_loss = _val_loss(gamma_qm, error_nm[_N_TRAIN:])
    # Margin 0.05 nats: the labels carry ~0.15 nats of signal about x.
    self.assertLess(oracle_loss, const_loss - 0.05)
    # oracle_gamma agrees with the in-scan validation loss (1e-5).
    np.testing.assert_allclose(
        oracle_loss, fitted.val_loss_e[fitted.best_epoch], atol=1e-5
    )

  @parameterized.parameters('mlp', 'matfac')
  def test_keeps_best_validation_checkpoint(self, kind):
    data = _data()
    # Labels of only 64 training prompts (masking keeps the shapes, hence the
    # compiled fit) and a large lr: the validation loss turns up
    # (overfitting), so the best epoch is not the last.
    visible_nm = data['visible_nm'].at[64:_N_TRAIN].set(False)
    fitted = _jitted(kind)(
        jax.random.key(1),
        **dict(data, visible_nm=visible_nm),
        lr=1e-1,
        epochs=30,
    )
    val_loss_e = np.asarray(fitted.val_loss_e)
    self.assertEqual(val_loss_e.shape, (30,))
    self.assertEqual(int(fitted.best_epoch), int(np.nanargmin(val_loss_e)))
    self.assertLess(int(fitted.best_epoch), 29)
    # The kept parameters are those of that epoch (1e-6).
    val = data['val_idx']
    loss = oracles.oracle_loss(
        fitted.params,
        data['emb_nd'][val],
        data['error_nm'][val],
        data['visible_nm'][val],
        kind=kind,
        size=16,
    )
    np.testing.assert_allclose(loss, np.nanmin(val_loss_e), atol=1e-6)

  @parameterized.parameters('mlp', 'matfac')
  def test_early_stop_is_the_full_run_cut_short(self, kind):
    data = _data()
    # The overfitting set-up above: the validation loss turns up early.
    args = dict(data, visible_nm=data['visible_nm'].at[64:_N_TRAIN].set(False))
    full, early = (
        _jitted(kind)(
            jax.random.key(1), **args, lr=1e-1, epochs=30, patience=patience
        )
        for patience in (None, 3)
    )
    self.assertEqual(int(full.epochs_run), 30)
    run, best = int(early.epochs_run), int(early.best_epoch)
    # It stops 3 epochs after its best, before the 30.
    self.assertEqual(run, min(30, best + 4))
    self.assertLess(run, 30)
    full_val = np.asarray(full.val_loss_e)
    np.testing.assert_array_equal(
        np.asarray(early.val_loss_e)[:run], full_val[:run]
    )
    self.assertTrue(np.isnan(np.asarray(early.val_loss_e)[run:]).all())
    self.assertEqual(best, int(np.argmin(full_val[:run])))
    if int(full.best_epoch) == best:  # no later improvement: the same fit
      for a, b in zip(
          jax.tree.leaves(early.params),
          jax.tree.leaves(full.params),
          strict=True,
      ):
        np.testing.assert_array_equal(a, b)
    steps = _N_TRAIN // 64
    self.assertTrue(np.isnan(np.asarray(early.loss_t)[run * steps :]).all())
    self.assertFalse(np.isnan(np.asarray(early.loss_t)[: run * steps]).any())

  def test_bad_patience(self):
    with self.assertRaisesRegex(ValueError, 'patience'):
      oracles.fit_oracle(jax.random.key(0), **_data(), kind='mlp', patience=0)

  def test_masked_labels_are_ignored(self):
    data = _data()
    invisible = np.zeros(data['error_nm'].shape, bool)
    invisible[:, 0] = True  # LLM 0 unlabelled, LLM 1 not in the pool.
    args = dict(
        data,
        visible_nm=jnp.asarray(~invisible),
        llm_mask_m=jnp.arange(_M) != 1,
    )
    scrambled = data['error_nm'].at[:, :2].set(jnp.nan)
    fits = [
        _jitted('mlp')(
            jax.random.key(0), **dict(args, error_nm=e), lr=1e-2, epochs=30
        )
        for e in (data['error_nm'], scrambled)
    ]
    # Exactly equal: masked labels never enter the arithmetic.
    np.testing.assert_array_equal(fits[0].loss_t, fits[1].loss_t)
    np.testing.assert_array_equal(fits[0].val_loss_e, fits[1].val_loss_e)
    run = int(fits[1].epochs_run)
    self.assertTrue(np.isfinite(fits[1].val_loss_e[:run]).all())

  def test_bad_kind_raises(self):
    with self.assertRaisesRegex(ValueError, 'kind'):
      oracles.oracle_gamma(_fitted('mlp'), _data()['emb_nd'], kind='knn')


if __name__ == '__main__':
  absltest.main()
