"""Save/load round trip, crash safety and encoder checks (router_io.py)."""

import os
import pathlib
import tempfile
from unittest import mock

import jax
import numpy as np
from absl.testing import absltest

from unirouter_jax.deploy import checkpointing
from unirouter_jax.deploy import io as router_io
from unirouter_jax.deploy import router as router_lib


def toy_encoder(texts):
  """Deterministic 8-d bag-of-characters embedding (a stand-in encoder)."""
  out = np.zeros((len(texts), 8), np.float32)
  for i, t in enumerate(texts):
    for c in t:
      out[i, ord(c) % 8] += 1.0
  return out


toy_encoder.encoder_id = 'toy-chars-8'
toy_encoder.encoder_hash = 'abc123'


def toy_router(m=3, seed=0):
  rng = np.random.default_rng(seed)
  texts = [
      ''.join(rng.choice(list('abcdefghij'), size=rng.integers(3, 20)))
      for _ in range(200)
  ]
  emb = toy_encoder(texts)
  q = (rng.uniform(size=(200, m)) < 0.6).astype(np.float32)
  return (
      router_lib.fit_router(
          jax.random.key(0),
          emb,
          q,
          np.ones_like(q, bool),
          np.arange(1, m + 1, dtype=np.float32),
          [f'llm{i}' for i in range(m)],
          train_idx=np.arange(50, 200),
          probe_idx=np.arange(50),
          k=4,
          probe_ids=[f'id{i}' for i in range(50)],
          probe_texts=texts[:50],
          encoder_id=toy_encoder.encoder_id,
          encoder_hash=toy_encoder.encoder_hash,
          shrinkage=2.0,
      ),
      texts,
  )


class RouterIOTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.router, cls.texts = toy_router()

  def test_save_load_route_identical(self):
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'r')
      router_io.save_router(path, self.router)
      loaded = router_io.load_router(path, encoder_id='toy-chars-8')
    for name in (
        'llm_names',
        'probe_ids',
        'probe_texts',
        'encoder_id',
        'encoder_hash',
    ):
      self.assertEqual(getattr(loaded, name), getattr(self.router, name))
    jax.tree.map(np.testing.assert_array_equal, loaded, self.router)
    a = router_io.route_texts(loaded, self.texts, encoder=toy_encoder, lam=0.1)
    b = router_io.route_texts(
        self.router, self.texts, encoder=toy_encoder, lam=0.1
    )
    np.testing.assert_array_equal(a.choice_q, b.choice_q)
    np.testing.assert_array_equal(a.gamma_qm, b.gamma_qm)

  def test_manifest_is_readable_json(self):
    with tempfile.TemporaryDirectory() as tmp:
      router_io.save_router(tmp + '/r', self.router)
      man = router_io.read_router_manifest(tmp + '/r')
    self.assertEqual(man['llm_names'], ['llm0', 'llm1', 'llm2'])
    self.assertEqual(man['encoder_hash'], 'abc123')
    self.assertIn('library_version', man)
    self.assertEqual(man['cost_m'], [1.0, 2.0, 3.0])

  def test_crash_mid_save_keeps_previous_router(self):
    newer = router_lib.set_cost(self.router, 'llm0', 9.0)
    with tempfile.TemporaryDirectory() as tmp:
      path = tmp + '/r'
      router_io.save_router(path, self.router)
      real_replace = os.replace

      def crash(src, dst):
        if '.tmp-' in str(src):
          raise KeyboardInterrupt('power cut')
        return real_replace(src, dst)

      with mock.patch.object(checkpointing.os, 'replace', crash):
        with self.assertRaises(KeyboardInterrupt):
          router_io.save_router(path, newer)
      loaded = router_io.load_router(path)
      np.testing.assert_array_equal(loaded.cost_m, self.router.cost_m)
      self.assertEqual(sorted(os.listdir(tmp)), ['r'])
      # A hard crash between the two renames leaves only the backup.
      os.rename(path, os.path.join(tmp, '.r.old'))
      np.testing.assert_array_equal(
          router_io.load_router(path).cost_m, self.router.cost_m
      )

  def test_other_encoder_fails_clearly(self):
    with tempfile.TemporaryDirectory() as tmp:
      router_io.save_router(tmp + '/r', self.router)
      with self.assertRaisesRegex(ValueError, 'fitted with encoder'):
        router_io.load_router(tmp + '/r', encoder_id='minilm')
      with self.assertRaisesRegex(ValueError, 'weights'):
        router_io.load_router(
            tmp + '/r', encoder_id='toy-chars-8', encoder_hash='different'
        )

    def other(texts):
      return toy_encoder(texts)

    other.encoder_id = 'other'
    with self.assertRaisesRegex(ValueError, 'not comparable'):
      router_io.route_texts(self.router, ['hi'], encoder=other, lam=0.0)
    with self.assertRaisesRegex(ValueError, 'encoder_id'):
      router_io.route_texts(self.router, ['hi'], encoder=lambda t: t, lam=0.0)
    with self.assertRaisesRegex(ValueError, 'at least one prompt'):
      router_io.route_texts(self.router, [], encoder=toy_encoder, lam=0.0)

  def test_not_a_router(self):
    with tempfile.TemporaryDirectory() as tmp:
      with self.assertRaisesRegex(ValueError, 'manifest.json is missing'):
        router_io.load_router(tmp)

  def test_tampering_with_any_file_is_named(self):
    # Truncate, delete or flip one byte of each file of a saved router:
    # load fails with one line naming that file (relative to the router).
    with tempfile.TemporaryDirectory() as tmp:
      d = os.path.join(tmp, 'r')
      router_io.save_router(d, self.router)
      files = sorted(
          os.path.relpath(os.path.join(root, f), d)
          for root, _, names in os.walk(d)
          for f in names
      )
      self.assertIn('manifest.json', files)
      self.assertGreater(len(files), 3)  # orbax's state files too
      root = pathlib.Path(d)
      originals = {f: (root / f).read_bytes() for f in files}

      def damage(rel, how):
        path, data = root / rel, originals[rel]
        if how == 'delete':
          path.unlink()
        elif how == 'truncate':
          path.write_bytes(data[: len(data) // 2])
        else:  # flip one bit of the middle byte
          i = len(data) // 2
          path.write_bytes(data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :])

      for rel in files:
        for how in ('delete', 'truncate', 'flip'):
          with self.subTest(file=rel, how=how):
            damage(rel, how)
            with self.assertRaises(ValueError) as ctx:
              router_io.load_router(d)
            message = str(ctx.exception)
            self.assertNotIn('\n', message)
            self.assertIn(rel, message)
            (root / rel).write_bytes(originals[rel])
      router_io.load_router(d)  # restored: loads again
      mask = os.umask(0)
      os.umask(mask)
      self.assertEqual(root.stat().st_mode & 0o777, 0o777 & ~mask)
      (root / 'state' / 'stray.bin').write_bytes(b'x')
      with self.assertRaisesRegex(ValueError, 'state/stray.bin was not'):
        router_io.load_router(d)


if __name__ == '__main__':
  absltest.main()


class FitFromDatasetTest(absltest.TestCase):
  """K is chosen by the protocol's rule (method.md 2.4), not in-sample."""

  def test_k_selection_routes_the_probe_prompts_with_training_psi(self):
    import jax.numpy as jnp  # noqa: PLC0415

    from tests import synthetic  # noqa: PLC0415
    from unirouter_jax.core import curves, kmeans, psi, routing  # noqa: PLC0415
    from unirouter_jax.data import Dataset  # noqa: PLC0415

    data, _, _ = synthetic.cluster_routing_problem(0, n=300, m=4)
    n, m = data.num_prompts, data.num_llms
    ds = Dataset(
        name='toy',
        prompt_ids=np.asarray([f'p{i}' for i in range(n)]),
        prompts=np.asarray([f'prompt {i}' for i in range(n)]),
        tasks=None,
        llm_names=tuple(data.llm_names),
        quality_nm=np.asarray(data.quality_nm),
        label_mask_nm=np.asarray(data.label_mask_nm),
        cost_nm=np.asarray(data.cost_nm),
        per_prompt_cost=False,
        cost_unit='usd_per_query',
        provenance={},
    )
    key = jax.random.key(5)
    router, info = router_io.fit_from_dataset(key, ds, data.emb_nd, k=None)
    ks = info['k_candidates']
    self.assertGreater(len(ks), 1)
    # Recompute the rule from core pieces: K-means on the training prompts,
    # psi of every LLM from the training prompts' labels, the probe prompts
    # routed over the lambda grid, Area on them.
    p_key, k_key = jax.random.split(key)
    perm = np.asarray(jax.random.permutation(p_key, n))
    p = info['num_probe']
    probe, train = np.sort(perm[:p]), np.sort(perm[p:])
    w = np.zeros((n,), np.float32)
    w[train] = 1.0
    err = 1.0 - data.quality_nm
    pool = jnp.ones((m,), bool)
    ev = curves.eval_set(
        data.quality_nm[probe],
        data.label_mask_nm[probe],
        data.cost_nm[probe],
        pool,
    )
    want = []
    for k in ks:
      c = kmeans.kmeans(k_key, data.emb_nd, jnp.asarray(w), k, k_max=max(ks))
      f = psi.cluster_features(
          data.emb_nd[train], c, err[train], data.label_mask_nm[train]
      )
      gamma = routing.uniroute_gamma(
          kmeans.one_hot_assign(data.emb_nd[probe], c), f.psi_km
      )
      m_ = curves.curve_from_gamma(
          gamma,
          pool,
          data.cost_nm[probe].mean(0),
          ev,
          routing.lambda_grid(200),
          jnp.linspace(0, 1, 101),
      )
      want.append(float(m_.area))
    np.testing.assert_allclose(info['val_area_k'], want, atol=1e-6)
    self.assertEqual(info['k'], ks[int(np.argmax(want))])
    self.assertEqual(router.num_clusters, info['k'])
