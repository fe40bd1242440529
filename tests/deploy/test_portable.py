"""The portable JSON export and its NumPy reader (export.py, portable.py)."""

import contextlib
import io
import json
import os
import pathlib
import tempfile
from unittest import mock

import jax
import numpy as np
from absl.testing import absltest, parameterized

from examples import numpy_gateway
from tests.shell import subproc
from unirouter_jax.deploy import export, heldout, portable
from unirouter_jax.deploy import router as router_lib


def tie_router(seed=0, n=1500, d=16, k=8, n_probe=400, **map_kw):
  """A router whose LLMs 4 and 5 copy 0 and 1: LLM 4 cheaper than 0, LLM 5
  as dear as 1 (exact ties in score at every lambda for 5 and 1)."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(k, d)) * 3.0
  cluster_n = rng.integers(0, k, size=n)
  emb = (centres[cluster_n] + rng.normal(size=(n, d))).astype(np.float32)
  acc_km = rng.uniform(0.2, 0.9, size=(k, 4))
  acc_km[0, 0] = acc_km[1, 1] = 1.0  # 'a' best on cluster 0, 'b' on 1
  q = (rng.uniform(size=(n, 4)) < acc_km[cluster_n]).astype(np.float32)
  q = np.concatenate([q, q[:, :2]], axis=1)
  cost = np.asarray([0.002, 0.0035, 0.011, 0.03, 0.0015, 0.0035], np.float32)
  n_fit = n - 300
  router = router_lib.fit_router(
      jax.random.key(seed),
      emb[:n_fit],
      q[:n_fit],
      np.ones((n_fit, 6), bool),
      cost,
      ['a', 'b', 'c', 'd', 'a-cheap', 'b-copy'],
      train_idx=np.arange(n_probe, n_fit),
      probe_idx=np.arange(n_probe),
      k=k,
      encoder_id='toy-16',
      encoder_hash='f00d',
      **map_kw,
  )
  calib = heldout.make(emb, [f'p{i}' for i in range(n)], np.arange(n_fit, n))
  return router, calib, centres


class PortableTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.router, cls.calib, cls.centres = tie_router()
    cls.doc = export.to_portable(cls.router, cls.calib)
    # Through text, as a gateway reads it.
    cls.reader = portable.from_dict(json.loads(json.dumps(cls.doc)))
    rng = np.random.default_rng(1)
    near = cls.centres[rng.integers(0, len(cls.centres), 5000)]
    cls.prompts = np.concatenate([
        near + rng.normal(size=near.shape),
        rng.normal(size=(5000, near.shape[1])) * 4.0,
    ]).astype(np.float32)

  def test_numpy_reader_routes_exactly_as_router(self):
    self.assertEqual(self.prompts.shape, (10_000, 16))
    calibrated = [
        lam
        for p in self.doc['calibration']['points']
        for lam in (p['lambda'], p['lambda_alt'])
    ]
    self.assertGreater(len(set(calibrated)), 5)
    for lam in [0.0, 1e-3, 1.0, 10.0, 30.0, 100.0, 1e4] + calibrated:
      with self.subTest(lam=lam):
        want = router_lib.route(self.router, self.prompts, lam=lam)
        got = portable.route_numpy(self.reader, self.prompts, lam)
        np.testing.assert_array_equal(got, np.asarray(want.choice_q))
    np.testing.assert_array_equal(
        portable.assign_numpy(self.reader, self.prompts),
        np.asarray(want.cluster_q),
    )

  def test_ties_go_to_the_cheaper_then_the_lower_index(self):
    choice = portable.route_numpy(self.reader, self.prompts, 0.0)
    want = router_lib.route(self.router, self.prompts, lam=0.0).choice_q
    np.testing.assert_array_equal(choice, np.asarray(want))
    # 'a' and 'b-copy' tie with cheaper / equally dear twins: never chosen.
    names = np.asarray(self.reader.llm_names)[choice]
    self.assertNotIn('a', set(names))
    self.assertNotIn('b-copy', set(names))
    self.assertIn('a-cheap', set(names))
    self.assertIn('b', set(names))

  def test_float32_values_round_trip_exactly(self):
    r = self.router
    for name, got in (
        ('centroids_kd', self.reader.centroids_kd),
        ('psi_km', self.reader.psi_km),
        ('cost_m', self.reader.cost_m),
    ):
      want = np.asarray(getattr(r, name), np.float32)
      self.assertEqual(got.dtype, np.float32)
      np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    self.assertEqual(self.doc['cost_m'][0], 0.002)  # not 0.0020000000949...
    np.testing.assert_array_equal(self.reader.count_km, np.asarray(r.count_km))

  def test_document_states_rule_encoder_and_version(self):
    doc = self.doc
    self.assertEqual(doc['format'], 'unirouter_jax.portable_router')
    self.assertEqual(doc['format_version'], 1)
    self.assertEqual(doc['rule'], portable.RULE)
    self.assertIn('lowest cost_m, then the lowest index', doc['rule']['choice'])
    self.assertEqual(doc['encoder'], {'id': 'toy-16', 'weights_hash': 'f00d'})
    self.assertEqual(doc['llm_names'], list(self.router.llm_names))
    self.assertEqual((doc['num_clusters'], doc['dim']), (8, 16))
    cal = doc['calibration']
    self.assertEqual(cal['num_prompts'], 300)
    self.assertLen(cal['points'], export.DEFAULT_NUM_BUDGETS)
    for p in cal['points']:
      self.assertTrue(p['reached'])
      self.assertLessEqual(p['mean_cost'], p['budget'])
      self.assertAlmostEqual(p['mixed_mean_cost'], p['budget'], delta=1e-6)

  def test_lambda_for_budget(self):
    points = self.doc['calibration']['points']
    mid = points[5]['budget']
    lam = portable.lambda_for_budget(self.reader, mid)
    fit = [p['lambda'] for p in points if p['mean_cost'] <= mid]
    self.assertEqual(lam, min(fit))
    with self.assertRaisesRegex(
        ValueError,
        r'^budget: no calibrated cost weight has a mean cost <= 0\.0001 '
        r'\(the cheapest has 0\.0015\)\.$',
    ):
      portable.lambda_for_budget(self.reader, 1e-4)

  def test_given_budgets(self):
    doc = export.to_portable(self.router, self.calib, budgets=[0.003, 0.01])
    self.assertEqual(
        [p['budget'] for p in doc['calibration']['points']], [0.003, 0.01]
    )

  def test_without_calibration(self):
    doc = export.to_portable(self.router)
    self.assertIsNone(doc['calibration'])
    with self.assertRaisesRegex(
        ValueError,
        r'^budgets: this router keeps no held-out calibration prompts, so no '
        r'budget can be calibrated; refit it with `unirouter fit`\.$',
    ):
      export.to_portable(self.router, budgets=[0.01])

  def test_reader_imports_no_jax(self):
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'router.json')
      export.write_portable(path, self.router, self.calib)
      code = (
          'import sys, numpy as np\n'
          'from unirouter_jax.deploy import portable\n'
          f'r = portable.load_json({path!r})\n'
          'print(portable.route_numpy(r, np.zeros((2, 16)), 0.0).tolist())\n'
          'assert "jax" not in sys.modules, "jax was imported"\n'
      )
      proc = subproc.run(['-c', code])
    self.assertEqual(proc.returncode, 0, proc.stderr)
    want = router_lib.route(self.router, np.zeros((2, 16)), lam=0.0)
    self.assertEqual(
        proc.stdout.strip(), str(np.asarray(want.choice_q).tolist())
    )

  def test_example_gateway(self):
    with tempfile.TemporaryDirectory() as tmp:
      path, npy = os.path.join(tmp, 'router.json'), os.path.join(tmp, 'e.npy')
      export.write_portable(path, self.router, self.calib)
      np.save(npy, self.prompts[:20])
      budget = self.doc['calibration']['points'][4]['budget']
      out = io.StringIO()
      with contextlib.redirect_stdout(out):
        status = numpy_gateway.main([path, npy, '--budget', str(budget)])
    self.assertEqual(status, 0)
    lam = portable.lambda_for_budget(self.reader, budget)
    want = router_lib.route(self.router, self.prompts[:20], lam=lam)
    self.assertEqual(out.getvalue().splitlines(), want.choice_names)

  def test_write_is_atomic(self):
    with tempfile.TemporaryDirectory() as tmp:
      path = pathlib.Path(tmp) / 'router.json'
      path.write_text('previous')

      def crash(src, dst):
        raise KeyboardInterrupt('power cut')

      with mock.patch.object(export.os, 'replace', crash):
        with self.assertRaises(KeyboardInterrupt):
          export.write_portable(path, self.router, self.calib)
      self.assertEqual(os.listdir(tmp), ['router.json'])
      self.assertEqual(path.read_text(), 'previous')
      export.write_portable(path, self.router)
      self.assertEqual(os.listdir(tmp), ['router.json'])
      mask = os.umask(0)
      os.umask(mask)
      self.assertEqual(path.stat().st_mode & 0o777, 0o666 & ~mask)

  @parameterized.named_parameters(
      (
          'format',
          {'format': 'other'},
          (
              "^r: not a unirouter portable router \\(format 'other', expected "
              "'unirouter_jax.portable_router'\\)\\.$"
          ),
      ),
      (
          'version',
          {'format_version': 3},
          r'^r: format_version 3 is not supported \(this reader reads 1 to '
          r'2\)\.$',
      ),
      (
          'names',
          {'llm_names': []},
          r'^r: llm_names: expected a non-empty list\.$',
      ),
      (
          'psi_shape',
          {'psi_km': [[0.5]]},
          r'^r: psi_km: expected shape \[8, 6\], got \[1, 1\]\.$',
      ),
      ('missing', {'cost_m': None}, r'^r: cost_m is missing\.$'),
      (
          'not_numbers',
          {'centroids_kd': [['x']]},
          r'^r: centroids_kd: expected an array of numbers\.$',
      ),
  )
  def test_bad_documents(self, change, message):
    doc = json.loads(json.dumps(self.doc))
    for key, value in change.items():
      if value is None:
        del doc[key]
      else:
        doc[key] = value
    with self.assertRaisesRegex(ValueError, message):
      portable.from_dict(doc, 'r')

  def test_bad_files(self):
    with tempfile.TemporaryDirectory() as tmp:
      bad = os.path.join(tmp, 'bad.json')
      pathlib.Path(bad).write_text('{')
      with self.assertRaisesRegex(ValueError, f'^{bad}: not readable JSON: '):
        portable.load_json(bad)
      missing = os.path.join(tmp, 'none.json')
      with self.assertRaisesRegex(
          ValueError, f'^{missing}: cannot read: No such file or directory\\.$'
      ):
        portable.load_json(missing)
    with self.assertRaisesRegex(ValueError, r'^emb_qd: expected \[q, 16\]'):
      portable.route_numpy(self.reader, np.zeros((2, 3)), 0.0)
    with self.assertRaisesRegex(ValueError, '^lam: expected a finite value'):
      portable.route_numpy(self.reader, self.prompts[:2], -1.0)


def prompts_near(centres, seed=1, num=2500):
  rng = np.random.default_rng(seed)
  near = centres[rng.integers(0, len(centres), num)]
  return np.concatenate([
      near + rng.normal(size=near.shape),
      rng.normal(size=(num, near.shape[1])) * 4.0,
  ]).astype(np.float32)


# Scores of two LLMs closer than this may be ranked either way by float32
# rounding (NumPy's exp and sums are not XLA's); everywhere else the
# choices must be identical.
_NEAR_TIE = 1e-5


@parameterized.named_parameters(
    ('soft', {'cluster_map': 'soft', 'beta': 0.05}),
    ('soft_sharp', {'cluster_map': 'soft', 'beta': 1.0}),
    ('learned_mlp', {'cluster_map': 'learned', 'epochs': 2}),
    ('learned_linear', {'cluster_map': 'learned', 'arch': 'linear'}),
)
class PortableMapsTest(parameterized.TestCase):
  """Soft and learned cluster maps exported, read and routed in NumPy."""

  def test_numpy_reader_routes_as_router(self, map_kw):
    router, calib, centres = tie_router(**map_kw)
    kind = map_kw['cluster_map']
    doc = export.to_portable(router, calib)
    self.assertEqual(doc['format_version'], 2)
    self.assertEqual(doc['rule'], portable.rule(kind))
    self.assertEqual(doc['cluster_map']['kind'], kind)
    reader = portable.from_dict(json.loads(json.dumps(doc)))
    prompts = prompts_near(centres)
    want = router_lib.route(router, prompts, lam=0.0)
    np.testing.assert_allclose(
        portable.gamma_numpy(reader, prompts), want.gamma_qm, atol=2e-5
    )
    np.testing.assert_array_equal(
        portable.assign_numpy(reader, prompts), want.cluster_q
    )
    calibrated = [
        lam
        for p in doc['calibration']['points']
        for lam in (p['lambda'], p['lambda_alt'])
    ]
    agree = []
    for lam in [0.0, 1e-3, 1.0, 10.0, 30.0, 100.0, 1e4] + calibrated:
      out = router_lib.route(router, prompts, lam=lam)
      got = portable.route_numpy(reader, prompts, lam)
      score = np.asarray(out.gamma_qm) + np.float32(lam) * out.cost_m
      best = score.min(axis=1, keepdims=True)
      # The next distinct score (exact ties, between copies, count as clear).
      runner_up = np.where(score > best, score, np.inf).min(axis=1)
      clear = runner_up - best[:, 0] > _NEAR_TIE
      agree.append(np.mean(got == np.asarray(out.choice_q)))
      with self.subTest(lam=lam):
        np.testing.assert_array_equal(
            got[clear], np.asarray(out.choice_q)[clear]
        )
    # Near ties too go the same way almost always.
    self.assertGreaterEqual(min(agree), 0.999)
    names = set(
        np.asarray(reader.llm_names)[portable.route_numpy(reader, prompts, 0.0)]
    )
    self.assertNotIn('a', names)
    self.assertNotIn('b-copy', names)

  def test_map_round_trips_exactly(self, map_kw):
    router, _, _ = tie_router(**map_kw)
    reader = portable.from_dict(
        json.loads(json.dumps(export.to_portable(router)))
    )
    cmap = reader.cluster_map
    if map_kw['cluster_map'] == 'soft':
      self.assertEqual(cmap['beta'], np.float32(map_kw['beta']))
      return
    layers = cmap['layers']
    want = [
        np.asarray(x) for x in jax.tree.leaves(router.cluster_map.variables)
    ]
    got = [
        x
        for layer in layers
        for name, x in layer.items()
        if isinstance(x, np.ndarray)
    ]
    self.assertEqual(sum(x.size for x in got), sum(x.size for x in want))
    self.assertEqual(layers[-1]['kernel'].shape[1], 8)
    if map_kw.get('arch') == 'linear':
      self.assertEqual([layer['op'] for layer in layers], ['dense'])
      np.testing.assert_array_equal(
          layers[0]['kernel'],
          np.asarray(
              router.cluster_map.variables['params']['Dense_0']['kernel']
          ),
      )
    else:
      self.assertEqual(
          [layer['op'] for layer in layers],
          ['batch_norm', 'dense', 'batch_norm', 'relu'] * 1
          + ['dense', 'batch_norm', 'relu', 'dense'],
      )


class PortableMapDocumentTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    router, _, _ = tie_router(cluster_map='learned', arch='linear')
    cls.doc = json.loads(json.dumps(export.to_portable(router)))

  @parameterized.named_parameters(
      ('kind', {'kind': 'fuzzy'}, r"^r: cluster_map: unknown kind 'fuzzy'"),
      ('beta', {'kind': 'soft', 'beta': -1}, r'^r: cluster_map: beta: '),
      ('op', {'layers': [{'op': 'tanh'}]}, r"layers\[0\]: unknown op 'tanh'"),
      (
          'outputs',
          {'layers': [{'op': 'dense', 'kernel': [[0.0]] * 16}]},
          r'expected 8 outputs \(one per cluster\), got 1\.$',
      ),
      (
          'kernel',
          {'layers': [{'op': 'dense', 'kernel': [[0.0]] * 3}]},
          r'layers\[0\]: kernel: expected shape \[16, None\]',
      ),
  )
  def test_bad_maps(self, entry, message):
    doc = json.loads(json.dumps(self.doc))
    doc['cluster_map'] = {**doc['cluster_map'], **entry}
    with self.assertRaisesRegex(ValueError, message):
      portable.from_dict(doc, 'r')

  def test_reader_imports_no_jax(self):
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'router.json')
      with open(path, 'w') as f:
        json.dump(self.doc, f)
      code = (
          'import sys, numpy as np\n'
          'from unirouter_jax.deploy import portable\n'
          f'r = portable.load_json({path!r})\n'
          'print(portable.route_numpy(r, np.ones((2, 16)), 0.0).tolist())\n'
          'assert "jax" not in sys.modules, "jax was imported"\n'
      )
      proc = subproc.run(['-c', code])
    self.assertEqual(proc.returncode, 0, proc.stderr)


if __name__ == '__main__':
  absltest.main()
