"""Tests of unirouter_jax.deploy.checkpointing: round trips and crash safety."""

import functools
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.deploy import checkpointing
from unirouter_jax.estimators import learned_map, oracles

_N, _D, _M, _K = 64, 8, 3, 4


def _emb_nd():
  return np.random.default_rng(1).normal(size=(_N, _D)).astype(np.float32)


@functools.cache
def _map_params(arch: str) -> learned_map.LearnedMapParams:
  """Initialised (not fitted: compiling a fit is slow) parameters, with
  non-trivial running averages so that eval-mode predictions use them."""
  net = learned_map.ClusterNet(_K, arch, hidden=16)
  # Jitted: eager flax init dispatches (and compiles) op by op.
  init = jax.jit(lambda key: net.init(key, jnp.zeros((1, _D)), train=False))
  variables = jax.tree.map(lambda x: x + 0.5, init(jax.random.key(0)))
  return learned_map.LearnedMapParams(
      variables=variables, loss_t=jnp.linspace(0.7, 0.3, 5)
  )


@functools.partial(jax.jit, static_argnames='arch')
def _predict_map(fitted, arch):
  return learned_map.cluster_map(
      fitted, _emb_nd(), jnp.ones(_K, bool), arch=arch, hidden=16
  )


@functools.cache
def _oracle_params() -> oracles.OracleParams:
  net = oracles.MatFacOracle(_M, rank=4)
  params = jax.jit(lambda key: net.init(key, jnp.zeros((1, _D))))(
      jax.random.key(0)
  )['params']
  return oracles.OracleParams(
      params=params,
      loss_t=jnp.linspace(0.7, 0.3, 6),
      val_loss_e=jnp.asarray([0.6, 0.5, 0.55]),
      best_epoch=jnp.asarray(1, jnp.int32),
      epochs_run=jnp.asarray(3, jnp.int32),
  )


@jax.jit
def _predict_oracle(fitted):
  return oracles.oracle_gamma(fitted, _emb_nd(), kind='matfac')


class CheckpointingTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    # tempfile, not self.create_tempdir(): absl flags are unparsed under pytest.
    self.root = pathlib.Path(tempfile.mkdtemp())
    self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
    self.ckpt = self.root / 'ckpt'

  @parameterized.parameters('linear', 'mlp')
  def test_learned_map_round_trip(self, arch):
    fitted = _map_params(arch)
    checkpointing.save(self.ckpt, fitted, manifest={'arch': arch, 'k': _K})
    restored = checkpointing.restore(self.ckpt, jax.eval_shape(lambda: fitted))
    self.assertIsInstance(restored, learned_map.LearnedMapParams)
    # Exactly equal predictions.
    np.testing.assert_array_equal(
        _predict_map(restored, arch), _predict_map(fitted, arch)
    )
    np.testing.assert_array_equal(restored.loss_t, fitted.loss_t)
    self.assertEqual(
        checkpointing.read_manifest(self.ckpt), {'arch': arch, 'k': _K}
    )

  def test_oracle_round_trip_with_template(self):
    fitted = _oracle_params()
    checkpointing.save(self.ckpt, fitted, manifest={'val': fitted.val_loss_e})
    restored = checkpointing.restore(self.ckpt, fitted)  # concrete template
    self.assertIsInstance(restored, oracles.OracleParams)
    np.testing.assert_array_equal(
        _predict_oracle(restored), _predict_oracle(fitted)
    )  # exactly equal
    self.assertEqual(int(restored.best_epoch), int(fitted.best_epoch))
    # Arrays in the manifest become lists (tolerance 1e-6 for JSON floats).
    np.testing.assert_allclose(
        checkpointing.read_manifest(self.ckpt)['val'],
        fitted.val_loss_e,
        rtol=1e-6,
    )

  def test_overwrite_replaces_checkpoint(self):
    tree = {'w': jnp.arange(3.0)}
    checkpointing.save(self.ckpt, tree, manifest={'v': 1})
    checkpointing.save(self.ckpt, {'w': tree['w'] + 1}, manifest={'v': 2})
    restored = checkpointing.restore(self.ckpt, tree)
    np.testing.assert_array_equal(restored['w'], [1.0, 2.0, 3.0])  # exact
    self.assertEqual(checkpointing.read_manifest(self.ckpt), {'v': 2})
    self.assertEqual(os.listdir(self.root), ['ckpt'])

  def test_a_folder_that_is_not_a_checkpoint_is_never_replaced(self):
    tree = {'w': jnp.arange(3.0)}
    os.makedirs(self.ckpt)
    pathlib.Path(self.ckpt, 'notes.txt').write_text('mine')
    with self.assertRaisesRegex(
        ValueError, 'exists and is not a saved checkpoint .*nothing was written'
    ):
      checkpointing.save(self.ckpt, tree)
    self.assertEqual(os.listdir(self.ckpt), ['notes.txt'])
    self.assertEqual(os.listdir(self.root), ['ckpt'])
    shutil.rmtree(self.ckpt)
    os.makedirs(self.ckpt)  # an empty folder is fine
    checkpointing.save(self.ckpt, tree)
    self.assertIn('manifest.json', os.listdir(self.ckpt))

  def _assert_previous_survives(self):
    restored = checkpointing.restore(self.ckpt, {'w': jnp.zeros(3)})
    np.testing.assert_array_equal(restored['w'], [0.0, 1.0, 2.0])  # exact
    self.assertEqual(checkpointing.read_manifest(self.ckpt), {'v': 1})
    self.assertEqual(os.listdir(self.root), ['ckpt'])  # no temp dirs left

  def test_crash_inside_write_keeps_previous(self):
    checkpointing.save(self.ckpt, {'w': jnp.arange(3.0)}, manifest={'v': 1})
    with mock.patch.object(
        pathlib.Path, 'write_text', side_effect=RuntimeError('disk full')
    ):
      with self.assertRaisesRegex(RuntimeError, 'disk full'):
        checkpointing.save(
            self.ckpt, {'w': jnp.arange(3.0) + 5}, manifest={'v': 2}
        )
    self._assert_previous_survives()

  def test_crash_at_final_rename_keeps_previous(self):
    checkpointing.save(self.ckpt, {'w': jnp.arange(3.0)}, manifest={'v': 1})
    real_replace = os.replace

    def replace(src, dst):
      if pathlib.Path(src).name.startswith('.ckpt.tmp-'):
        raise OSError('crash at rename')
      return real_replace(src, dst)

    with mock.patch.object(checkpointing.os, 'replace', side_effect=replace):
      with self.assertRaisesRegex(OSError, 'crash at rename'):
        checkpointing.save(
            self.ckpt, {'w': jnp.arange(3.0) + 5}, manifest={'v': 2}
        )
    self._assert_previous_survives()

  def test_recovers_from_hard_crash_between_renames(self):
    checkpointing.save(self.ckpt, {'w': jnp.arange(3.0)}, manifest={'v': 1})
    # A kill after the old checkpoint was moved aside, before the new one
    # was moved in.
    os.replace(self.ckpt, self.root / '.ckpt.old')
    restored = checkpointing.restore(self.ckpt, {'w': jnp.zeros(3)})
    np.testing.assert_array_equal(restored['w'], [0.0, 1.0, 2.0])  # exact
    checkpointing.save(self.ckpt, {'w': jnp.ones(3)}, manifest={'v': 3})
    self.assertEqual(os.listdir(self.root), ['ckpt'])
    self.assertEqual(checkpointing.read_manifest(self.ckpt), {'v': 3})

  def test_missing_or_corrupt_raises_naming_directory(self):
    with self.assertRaisesRegex(ValueError, 'ckpt'):
      checkpointing.restore(self.ckpt, {'w': jnp.zeros(3)})
    with self.assertRaisesRegex(ValueError, 'ckpt'):
      checkpointing.read_manifest(self.ckpt)
    checkpointing.save(self.ckpt, {'w': jnp.arange(3.0)})
    with self.assertRaisesRegex(ValueError, 'ckpt'):
      checkpointing.restore(self.ckpt, {'v': jnp.zeros(3)})  # wrong tree
    for f in (self.ckpt / 'state').rglob('*'):
      if f.is_file():
        f.write_bytes(b'garbage')
    with self.assertRaisesRegex(ValueError, 'ckpt'):
      checkpointing.restore(self.ckpt, {'w': jnp.zeros(3)})

  def test_package_import_does_not_import_orbax(self):
    code = (
        'import sys, unirouter_jax, unirouter_jax.estimators.learned_map, '
        'unirouter_jax.estimators.oracles, unirouter_jax.deploy.checkpointing; '
        'assert "orbax" not in sys.modules, "orbax imported"'
    )
    subprocess.run([sys.executable, '-c', code], check=True)


if __name__ == '__main__':
  absltest.main()
