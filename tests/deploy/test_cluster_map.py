"""Routers with every cluster map: kmeans, soft, learned (cluster_map.py).

The properties the K-means router has (test_router.py, test_io.py), for
every map: an LLM added after fit gets the psi it would have had if fitted
with the router; save -> load -> route is identical; and references: soft
psi is the responsibility-weighted mean, a learned map is
``fit_learned_map``'s, K-means is unchanged (also from disk, as saved
before maps existed).
"""

import dataclasses
import json
import os
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from tests import synthetic
from unirouter_jax.core import kmeans
from unirouter_jax.data import Dataset
from unirouter_jax.deploy import calibration, checkpointing
from unirouter_jax.deploy import cluster_map as maps
from unirouter_jax.deploy import io as router_io
from unirouter_jax.deploy import router as router_lib
from unirouter_jax.estimators import learned_map

KINDS = ('kmeans', 'soft', 'learned')
BETA = 0.2  # soft enough on these blobs: responsibilities well inside (0, 1)
N_PROBE = 200


def overlapping_blobs(seed=0, n=800, d=5, k=3, m=4):
  """Blobs close enough that soft responsibilities are not one-hot."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(k, d)) * 1.5
  cluster_n = rng.integers(0, k, size=n)
  emb = (centres[cluster_n] + 0.7 * rng.normal(size=(n, d))).astype(np.float32)
  acc_km = rng.uniform(0.2, 0.9, size=(k, m))
  quality = (rng.uniform(size=(n, m)) < acc_km[cluster_n]).astype(np.float32)
  return emb, quality, np.linspace(1.0, 3.0, m).astype(np.float32)


def fit(emb, q, cost, kind, m=None, **kw):
  m = q.shape[1] if m is None else m
  return router_lib.fit_router(
      jax.random.key(0),
      emb,
      q[:, :m],
      np.ones((emb.shape[0], m), bool),
      cost[:m],
      [f'llm{i}' for i in range(m)],
      train_idx=np.arange(N_PROBE, emb.shape[0]),
      probe_idx=np.arange(N_PROBE),
      k=3,
      probe_ids=[f'p{i}' for i in range(N_PROBE)],
      encoder_id='toy-5',
      cluster_map=kind,
      **{'beta': BETA, 'epochs': 2, **kw},
  )


class ClusterMapRouterTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.emb, cls.q, cls.cost = overlapping_blobs()
    cls.routers = {kind: fit(cls.emb, cls.q, cls.cost, kind) for kind in KINDS}

  @parameterized.parameters(*KINDS)
  def test_add_llm_equals_fit_with_it(self, kind):
    # A learned map is fitted on the fitting LLMs: the LLM added later is
    # not one of them, so the router "fitted with it" fits its map without.
    kw = {'map_llms': ['llm0', 'llm1', 'llm2']} if kind == 'learned' else {}
    full = fit(self.emb, self.q, self.cost, kind, **kw)
    base = fit(self.emb, self.q, self.cost, kind, m=3)
    labels = {f'p{i}': float(self.q[i, 3]) for i in range(N_PROBE)}
    added = router_lib.add_llm(base, 'llm3', float(self.cost[3]), labels)
    self.assertEqual(added.llm_names, full.llm_names)
    self.assertEqual(added.cluster_map.kind, kind)
    jax.tree.map(np.testing.assert_array_equal, added, full)  # exact
    for lam in (0.0, 0.05, 0.3):
      a = router_lib.route(added, self.emb[N_PROBE:], lam=lam)
      b = router_lib.route(full, self.emb[N_PROBE:], lam=lam)
      np.testing.assert_array_equal(a.choice_q, b.choice_q)
      np.testing.assert_array_equal(a.gamma_qm, b.gamma_qm)
    removed = router_lib.remove_llm(added, 'llm3')
    jax.tree.map(np.testing.assert_array_equal, removed, base)

  @parameterized.parameters(*KINDS)
  def test_save_load_route_identical(self, kind):
    router = self.routers[kind]
    with tempfile.TemporaryDirectory() as tmp:
      router_io.save_router(tmp + '/r', router)
      man = router_io.read_router_manifest(tmp + '/r')
      loaded = router_io.load_router(tmp + '/r', encoder_id='toy-5')
    self.assertEqual(man['cluster_map']['kind'], kind)
    self.assertEqual(man['format_version'], 1 if kind == 'kmeans' else 2)
    self.assertEqual(
        jax.tree_util.tree_structure(loaded),
        jax.tree_util.tree_structure(router),
    )
    jax.tree.map(np.testing.assert_array_equal, loaded, router)
    for lam in (0.0, 0.1):
      a = router_lib.route(loaded, self.emb, lam=lam)
      b = router_lib.route(router, self.emb, lam=lam)
      np.testing.assert_array_equal(a.choice_q, b.choice_q)
      np.testing.assert_array_equal(a.gamma_qm, b.gamma_qm)
      np.testing.assert_array_equal(a.cluster_q, b.cluster_q)

  def test_linear_map_save_load_and_padded_equals_trimmed(self):
    r = fit(self.emb, self.q, self.cost, 'learned', arch='linear')
    self.assertEqual(r.cluster_map.arch, 'linear')
    with tempfile.TemporaryDirectory() as tmp:
      router_io.save_router(tmp + '/r', r)
      loaded = router_io.load_router(tmp + '/r')
    self.assertEqual(
        jax.tree_util.tree_structure(loaded), jax.tree_util.tree_structure(r)
    )
    jax.tree.map(np.testing.assert_array_equal, loaded, r)
    # A map fitted on clusters padded to 5 routes as the trimmed one.
    w = np.zeros((self.emb.shape[0],), np.float32)
    w[N_PROBE:] = 1.0
    padded = kmeans.kmeans(
        jax.random.key(0), jnp.asarray(self.emb), jnp.asarray(w), 3, k_max=5
    )
    err = 1.0 - self.q
    cmap = maps.fit_learned(
        jax.random.key(1),
        padded,
        self.emb,
        np.arange(N_PROBE, self.emb.shape[0]),
        err,
        np.ones(err.shape, bool),
        self.emb[:N_PROBE],
        err[:N_PROBE],
        np.ones((N_PROBE, 4), bool),
        epochs=1,
    )
    args = (
        self.emb[:N_PROBE],
        self.q[:N_PROBE],
        np.ones((N_PROBE, 4), bool),
        self.cost,
        [f'llm{i}' for i in range(4)],
    )
    kw = dict(probe_ids=range(N_PROBE), probe_texts=[''] * N_PROBE)
    a = router_lib.from_clustering(
        padded, *args, trim=False, cluster_map=cmap, **kw
    )
    b = router_lib.from_clustering(padded, *args, cluster_map=cmap, **kw)
    self.assertEqual((a.centroids_kd.shape[0], b.num_clusters), (5, 3))
    out_a = router_lib.route(a, self.emb, lam=0.1)
    out_b = router_lib.route(b, self.emb, lam=0.1)
    np.testing.assert_array_equal(out_a.choice_q, out_b.choice_q)
    np.testing.assert_allclose(out_a.gamma_qm, out_b.gamma_qm, atol=1e-6)

  def test_manifest_states_the_map_and_is_tamper_evident(self):
    with tempfile.TemporaryDirectory() as tmp:
      router_io.save_router(tmp + '/r', self.routers['soft'])
      path = pathlib.Path(tmp) / 'r' / 'manifest.json'
      man = json.loads(path.read_text())
      self.assertEqual(man['cluster_map'], {'kind': 'soft', 'beta': BETA})
      man['cluster_map'] = {'kind': 'kmeans'}
      path.write_text(json.dumps(man))
      with self.assertRaisesRegex(ValueError, 'manifest.json is damaged'):
        router_io.load_router(tmp + '/r')

  def test_kmeans_is_the_default_and_the_nearest_centroid_rule(self):
    default = router_lib.fit_router(
        jax.random.key(0),
        self.emb,
        self.q,
        np.ones_like(self.q, bool),
        self.cost,
        [f'llm{i}' for i in range(4)],
        train_idx=np.arange(N_PROBE, self.emb.shape[0]),
        probe_idx=np.arange(N_PROBE),
        k=3,
        probe_ids=[f'p{i}' for i in range(N_PROBE)],
        encoder_id='toy-5',
    )
    r = self.routers['kmeans']
    jax.tree.map(np.testing.assert_array_equal, default, r)
    # NumPy reference: nearest centroid, per-cluster mean probe error.
    c = np.asarray(r.centroids_kd, np.float64)
    near = ((self.emb[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
    err = 1.0 - self.q[:N_PROBE]
    psi = np.stack([err[near[:N_PROBE] == j].mean(0) for j in range(3)])
    np.testing.assert_allclose(r.psi_km, psi, atol=1e-6)
    out = router_lib.route(r, self.emb, lam=0.1)
    np.testing.assert_array_equal(out.cluster_q, near)
    np.testing.assert_array_equal(out.gamma_qm, np.asarray(r.psi_km)[near])

  def test_soft_psi_and_gamma_are_responsibility_weighted(self):
    r = self.routers['soft']
    c = np.asarray(r.centroids_kd, np.float64)

    def resp(x):
      z = -BETA * ((x[:, None, :] - c[None]) ** 2).sum(-1)
      e = np.exp(z - z.max(1, keepdims=True))
      return e / e.sum(1, keepdims=True)

    r_pk = resp(self.emb[:N_PROBE].astype(np.float64))
    self.assertLess(np.mean(r_pk.max(1)), 0.9)  # soft, not one-hot
    err = 1.0 - self.q[:N_PROBE]
    psi = (r_pk.T @ err) / r_pk.sum(0)[:, None]
    np.testing.assert_allclose(r.psi_km, psi, atol=1e-5)
    np.testing.assert_allclose(
        r.count_km, np.repeat(r_pk.sum(0)[:, None], 4, 1), rtol=1e-5
    )
    out = router_lib.route(r, self.emb, lam=0.0)
    gamma = resp(self.emb.astype(np.float64)) @ np.asarray(r.psi_km)
    np.testing.assert_allclose(out.gamma_qm, gamma, atol=1e-5)

  def test_learned_map_is_fit_learned_maps_with_hard_psi(self):
    r, km = self.routers['learned'], self.routers['kmeans']
    self.assertEqual((r.cluster_map.arch, r.cluster_map.hidden), ('mlp', 128))
    # Same clusters and same psi as K-means (method.md 2.2).
    np.testing.assert_array_equal(r.centroids_kd, km.centroids_kd)
    np.testing.assert_array_equal(r.psi_km, km.psi_km)
    n = self.emb.shape[0]
    err = 1.0 - self.q
    params = learned_map.fit_learned_map(
        jax.random.fold_in(jax.random.key(0), 1),
        jnp.asarray(self.emb),
        jnp.arange(N_PROBE, n),
        jnp.asarray(err),
        jnp.ones(err.shape, bool),
        jnp.ones((4,), bool),
        km.psi_km,
        km.cluster_mask_k,
        learned_map.LEARNING_RATE,
        epochs=2,
    )
    phi = learned_map.cluster_map(
        params, self.emb, km.cluster_mask_k, arch='mlp'
    )
    out = router_lib.route(r, self.emb, lam=0.0)
    np.testing.assert_allclose(
        out.gamma_qm, np.asarray(phi) @ np.asarray(km.psi_km), atol=1e-5
    )
    np.testing.assert_array_equal(out.cluster_q, np.argmax(phi, axis=1))
    # It routes differently from K-means (a map was learned).
    self.assertGreater(
        np.abs(out.gamma_qm - km.psi_km[out.cluster_q]).max(), 1e-3
    )

  @parameterized.parameters('soft', 'learned')
  def test_budget_calibration(self, kind):
    r = self.routers[kind]
    emb = self.emb[N_PROBE:]
    top = calibration.calibrate_lambda(r, emb, target_cost=1e9).cost
    self.assertGreater(float(top), 1.5)  # the most accurate routing's cost
    for target in np.linspace(1.1, float(top) - 0.05, 3):
      cal = calibration.calibrate_lambda(r, emb, target_cost=target)
      rep = cal.report()
      self.assertTrue(rep['reached'])
      self.assertLessEqual(rep['cost'], target + 1e-6)
      self.assertAlmostEqual(rep['mixed_cost'], target, delta=1e-5)
      out = calibration.route_calibrated(r, emb, cal)
      cost = float(np.asarray(out.cost_m)[np.asarray(out.choice_q)].mean())
      self.assertAlmostEqual(cost, rep['cost'], delta=1e-6)
    best, area_s = calibration.select_shrinkage(r, emb, self.q[N_PROBE:])
    self.assertEqual(area_s.shape, (len(calibration.DEFAULT_STRENGTHS),))
    self.assertTrue(np.isfinite(area_s).all())
    self.assertIn(best, calibration.DEFAULT_STRENGTHS)

  def test_bad_arguments(self):
    for kw, msg in (
        ({'kind': 'fuzzy'}, 'cluster_map: expected one of'),
        ({'kind': 'soft', 'beta': -1.0}, 'beta: expected a finite value'),
        ({'kind': 'learned', 'map_llms': ['nope']}, 'map_llms'),
        ({'kind': 'learned', 'arch': 'cnn'}, 'arch: expected one of'),
    ):
      with self.subTest(msg=msg):
        kind = kw.pop('kind')
        with self.assertRaisesRegex(ValueError, msg):
          fit(self.emb, self.q, self.cost, kind, **kw)


class OldRouterTest(absltest.TestCase):

  def test_router_saved_before_maps_loads_as_kmeans(self):
    emb, q, cost = overlapping_blobs(1)
    router = fit(emb, q, cost, 'kmeans')
    with tempfile.TemporaryDirectory() as tmp:
      d = os.path.join(tmp, 'old')
      man = router_io.manifest(router)
      del man['cluster_map']  # as written before cluster maps
      tree = {name: getattr(router, name) for name in router_io._ARRAYS}
      checkpointing.save(d, tree, manifest=man)
      loaded = router_io.load_router(d)
    self.assertEqual(loaded.cluster_map.kind, 'kmeans')
    jax.tree.map(np.testing.assert_array_equal, loaded, router)
    a = router_lib.route(loaded, emb, lam=0.2)
    b = router_lib.route(router, emb, lam=0.2)
    np.testing.assert_array_equal(a.choice_q, b.choice_q)


def _dataset(data):
  n = data.num_prompts
  return Dataset(
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


class FitFromDatasetMapsTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    data, _, _ = synthetic.cluster_routing_problem(0, n=300, m=4, spread=1.0)
    cls.data, cls.ds = data, _dataset(data)

  def test_soft_beta_selected_by_validation_area(self):
    router, info = router_io.fit_from_dataset(
        jax.random.key(2), self.ds, self.data.emb_nd, cluster_map='soft'
    )
    self.assertEqual(info['cluster_map'], 'soft')
    self.assertEqual(info['beta_candidates'], list(maps.BETAS))
    self.assertLen(info['val_area_beta'], len(maps.BETAS))
    best = maps.BETAS[int(np.argmax(info['val_area_beta']))]
    self.assertEqual(info['beta'], best)
    self.assertEqual(float(router.cluster_map.beta), best)
    self.assertEqual(router.num_clusters, info['k'])
    # K is chosen as for K-means, whatever the map.
    _, km_info = router_io.fit_from_dataset(
        jax.random.key(2), self.ds, self.data.emb_nd
    )
    self.assertEqual(info['k'], km_info['k'])
    self.assertEqual(info['val_area_k'], km_info['val_area_k'])

  @parameterized.parameters('kmeans', 'soft')
  def test_add_llm_equals_fit_with_it(self, kind):
    # Fixed K and beta: nothing depends on the new LLM's labels.
    kw = dict(k=3, cluster_map=kind, beta=1.0, calib_size=20)
    full, _ = router_io.fit_from_dataset(
        jax.random.key(4), self.ds, self.data.emb_nd, **kw
    )
    base_ds = dataclasses.replace(
        self.ds,
        llm_names=self.ds.llm_names[:3],
        quality_nm=self.ds.quality_nm[:, :3],
        label_mask_nm=self.ds.label_mask_nm[:, :3],
        cost_nm=self.ds.cost_nm[:, :3],
    )
    base, _ = router_io.fit_from_dataset(
        jax.random.key(4), base_ds, self.data.emb_nd, **kw
    )
    index = {pid: i for i, pid in enumerate(self.ds.prompt_ids)}
    labels = {
        pid: float(self.ds.quality_nm[index[pid], 3]) for pid in base.probe_ids
    }
    name = self.ds.llm_names[3]
    added = router_lib.add_llm(base, name, float(full.cost_m[3]), labels)
    jax.tree.map(np.testing.assert_array_equal, added, full)

  def test_learned_from_dataset(self):
    router, info = router_io.fit_from_dataset(
        jax.random.key(2),
        self.ds,
        self.data.emb_nd,
        k=3,
        cluster_map='learned',
        arch='linear',
        epochs=2,
        calib_size=30,
    )
    self.assertEqual((info['cluster_map'], info['arch']), ('learned', 'linear'))
    self.assertEqual(router.cluster_map.arch, 'linear')
    out = router_lib.route(router, self.data.emb_nd, lam=0.0)
    self.assertEqual(out.gamma_qm.shape, (300, 4))
    self.assertTrue(np.isfinite(np.asarray(out.gamma_qm)).all())
    with self.assertRaisesRegex(ValueError, 'epochs: expected an int'):
      router_io.fit_from_dataset(
          jax.random.key(2),
          self.ds,
          self.data.emb_nd,
          k=3,
          cluster_map='learned',
          epochs=0,
      )


if __name__ == '__main__':
  absltest.main()
