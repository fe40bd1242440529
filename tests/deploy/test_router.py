"""Properties of the user-facing router (router.py)."""

import jax
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.deploy import router as router_lib


def blobs(seed=0, n=900, d=6, k=3, m=4):
  """Well-separated blobs; labels are Bernoulli of a per-blob accuracy."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(k, d)) * 5.0
  cluster_n = np.arange(n) % k
  emb = (centres[cluster_n] + 0.1 * rng.normal(size=(n, d))).astype(np.float32)
  acc_km = rng.uniform(0.3, 0.7, size=(k, m))
  quality = (rng.uniform(size=(n, m)) < acc_km[cluster_n]).astype(np.float32)
  cost = np.linspace(1.0, 2.0, m).astype(np.float32)
  return emb, quality, cost, cluster_n


def fit(emb, quality, cost, names=None, shrinkage=0.0, k=3, n_probe=300):
  n, m = quality.shape
  return router_lib.fit_router(
      jax.random.key(0),
      emb,
      quality,
      np.ones_like(quality, bool),
      cost,
      names or [f'llm{i}' for i in range(m)],
      train_idx=np.arange(n_probe, n),
      probe_idx=np.arange(n_probe),
      k=k,
      probe_ids=[f'p{i}' for i in range(n_probe)],
      shrinkage=shrinkage,
  )


class RouterTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.emb, cls.q, cls.cost, cls.cl = blobs()
    cls.full = fit(cls.emb, cls.q, cls.cost)
    cls.base = fit(
        cls.emb, cls.q[:, :3], cls.cost[:3], names=['llm0', 'llm1', 'llm2']
    )

  @parameterized.parameters(0.0, 3.0)
  def test_add_llm_equals_fit_from_start(self, shrinkage):
    full = router_lib.set_shrinkage(self.full, shrinkage)
    base = router_lib.set_shrinkage(self.base, shrinkage)
    labels = {f'p{i}': float(self.q[i, 3]) for i in range(300)}
    added = router_lib.add_llm(base, 'llm3', float(self.cost[3]), labels)
    self.assertEqual(added.llm_names, full.llm_names)
    for lam in (0.0, 0.05, 0.3):
      a = router_lib.route(added, self.emb[300:], lam=lam)
      b = router_lib.route(full, self.emb[300:], lam=lam)
      np.testing.assert_array_equal(a.choice_q, b.choice_q)
      np.testing.assert_allclose(a.gamma_qm, b.gamma_qm, atol=1e-6)
    np.testing.assert_allclose(added.se_km, full.se_km, atol=1e-6)

  def test_best_on_one_cluster_wins_it_then_loses_it(self):
    probe_cluster = np.asarray(
        router_lib.route(self.base, self.emb[:300], lam=0.0).cluster_q
    )
    labels = {f'p{i}': float(probe_cluster[i] == 0) for i in range(300)}
    r = router_lib.add_llm(self.base, 'special', 1.0, labels)
    out = router_lib.route(r, self.emb[300:], lam=0.0)
    special = np.asarray(out.choice_q) == 3
    np.testing.assert_array_equal(special, np.asarray(out.cluster_q) == 0)
    self.assertGreater(special.sum(), 0)
    shares = []
    for cost in (1.0, 2.0, 5.0, 50.0, 500.0):
      out = router_lib.route(
          router_lib.set_cost(r, 'special', cost), self.emb[300:], lam=0.01
      )
      shares.append(float((np.asarray(out.choice_q) == 3).mean()))
    self.assertEqual(shares[-1], 0.0)
    self.assertTrue(
        all(a >= b for a, b in zip(shares[:-1], shares[1:], strict=True))
    )

  def test_remove_llm_inverts_add(self):
    labels = list(self.q[:300, 0])
    r = router_lib.remove_llm(
        router_lib.add_llm(self.base, 'x', 1.0, labels), 'x'
    )
    np.testing.assert_allclose(r.psi_km, self.base.psi_km, atol=1e-7)
    self.assertEqual(r.llm_names, self.base.llm_names)

  def test_route_outputs_alternatives(self):
    out = router_lib.route(self.full, self.emb[300:310], lam=0.1)
    self.assertEqual(out.gamma_qm.shape, (10, 4))
    score = np.asarray(out.gamma_qm) + 0.1 * np.asarray(out.cost_m)
    np.testing.assert_array_equal(out.choice_q, score.argmin(1))
    self.assertLen(out.choice_names, 10)
    np.testing.assert_array_equal(
        out.cluster_q,
        router_lib.route(self.full, self.emb[300:310], lam=0.0).cluster_q,
    )

  def test_pool_restricts_choices(self):
    out = router_lib.route(
        self.full, self.emb[300:], lam=0.0, pool=['llm1', 'llm2']
    )
    self.assertTrue(set(out.choice_names) <= {'llm1', 'llm2'})

  def test_shrinkage_pulls_toward_global(self):
    strong = router_lib.set_shrinkage(self.full, 1e6)
    np.testing.assert_allclose(
        strong.psi_km, np.broadcast_to(self.full.global_m, (3, 4)), atol=1e-3
    )
    raw = router_lib.cluster_table(strong)['raw_psi_km']
    np.testing.assert_allclose(raw, self.full.psi_km, atol=1e-7)

  def test_standard_errors_shrink_with_counts(self):
    small = fit(self.emb, self.q, self.cost, n_probe=30)
    self.assertGreater(float(small.se_km.mean()), float(self.full.se_km.mean()))
    self.assertTrue(np.all(np.asarray(self.full.se_km) > 0))
    np.testing.assert_allclose(np.asarray(self.full.count_km).sum(0), 300)

  @parameterized.named_parameters(
      ('unknown_id', {'nope': 1.0}, 'unknown probe ids'),
      ('missing_ids', {'p0': 1.0}, 'missing 299'),
      ('out_of_range', [1.5] + [0.0] * 299, r'\[0, 1\]'),
      (
          'nan_in_map',
          {**{f'p{i}': 0.0 for i in range(299)}, 'p299': 'x'},
          'expected a number',
      ),
  )
  def test_bad_labels_raise_and_leave_router(self, labels, msg):
    before = self.base
    with self.assertRaisesRegex(ValueError, msg):
      router_lib.add_llm(before, 'new', 1.0, labels)
    self.assertEqual(before.llm_names, ('llm0', 'llm1', 'llm2'))

  def test_bad_name_and_cost(self):
    labels = [0.5] * 300
    with self.assertRaisesRegex(ValueError, 'duplicate'):
      router_lib.add_llm(self.base, 'llm0', 1.0, labels)
    with self.assertRaisesRegex(ValueError, 'cost'):
      router_lib.add_llm(self.base, 'new', -1.0, labels)
    with self.assertRaisesRegex(ValueError, 'cost'):
      router_lib.set_cost(self.base, 'llm0', float('nan'))
    with self.assertRaisesRegex(ValueError, 'no LLM named'):
      router_lib.remove_llm(self.base, 'ghost')
    with self.assertRaisesRegex(ValueError, 'emb_qd'):
      router_lib.route(self.base, np.zeros((2, 5)), lam=0.0)
    with self.assertRaisesRegex(ValueError, 'lam'):
      router_lib.route(self.base, self.emb[:2], lam=-1.0)

  def test_partial_labels_when_allowed(self):
    r = router_lib.add_llm(
        self.base,
        'half',
        1.0,
        {f'p{i}': 1.0 for i in range(150)},
        allow_missing=True,
    )
    np.testing.assert_allclose(np.asarray(r.count_km)[:, 3].sum(), 150)

  def test_labels_in_batches_equal_one_call_with_the_union(self):
    # Labels arriving in two batches (issue #20): partial add_llm, then
    # add_labels, equals add_llm with every label at once.
    labels = {f'p{i}': float(self.q[i, 3]) for i in range(300)}
    first = {k: v for k, v in labels.items() if int(k[1:]) % 3 == 0}
    second = {k: v for k, v in labels.items() if int(k[1:]) % 3 != 0}
    cost = float(self.cost[3])
    once = router_lib.add_llm(self.base, 'llm3', cost, labels)
    twice = router_lib.add_labels(
        router_lib.add_llm(self.base, 'llm3', cost, first, allow_missing=True),
        'llm3',
        second,
    )
    for name in ('psi_km', 'count_km', 'se_km', 'global_m', 'probe_visible_pm'):
      np.testing.assert_array_equal(
          getattr(twice, name), getattr(once, name), err_msg=name
      )
    # The CLI's entry point: an existing name extends, a new one adds.
    again = router_lib.add_or_extend(twice, 'llm3', None, first)
    np.testing.assert_array_equal(again.psi_km, once.psi_km)
    with self.assertRaisesRegex(ValueError, "already labelled for 'llm3'"):
      router_lib.add_labels(twice, 'llm3', {'p0': 1.0 - labels['p0']})
    with self.assertRaisesRegex(ValueError, 'change a cost with set-cost'):
      router_lib.add_or_extend(twice, 'llm3', cost + 1.0, first)
    with self.assertRaisesRegex(ValueError, '--cost: required for a new LLM'):
      router_lib.add_or_extend(twice, 'llm9', None, first)
    with self.assertRaisesRegex(ValueError, "no LLM 'llm9'"):
      router_lib.add_labels(twice, 'llm9', first)

  def test_ties_go_to_the_cheaper_then_the_lower_index(self):
    # Three copies of llm0's labels: the same psi, so exact ties at lam = 0.
    labels = list(self.q[:300, 0])
    r = router_lib.add_llm(self.base, 'dear-copy', 9.0, labels)
    r = router_lib.add_llm(r, 'cheap-copy', 0.5, labels)
    r = router_lib.add_llm(r, 'cheap-copy-2', 0.5, labels)
    out = router_lib.route(r, self.emb[300:], lam=0.0)
    chosen = set(out.choice_names)
    self.assertIn('cheap-copy', chosen)  # wherever llm0 is best
    self.assertEmpty(chosen & {'llm0', 'dear-copy', 'cheap-copy-2'})

  def test_no_llm_left(self):
    one = router_lib.remove_llm(
        router_lib.remove_llm(self.base, 'llm0'), 'llm1'
    )
    with self.assertRaisesRegex(
        ValueError,
        r"^name: cannot remove 'llm2', the router's only LLM \(a router needs "
        r'at least one; add another LLM first\)\.$',
    ):
      router_lib.remove_llm(one, 'llm2')
    none = one.replace(
        llm_names=(),
        cost_m=one.cost_m[:0],
        psi_km=one.psi_km[:, :0],
        probe_error_pm=one.probe_error_pm[:, :0],
        probe_visible_pm=one.probe_visible_pm[:, :0],
    )
    msg = (
        r'^router: a router needs at least one LLM, got none \(add one with '
        r'`unirouter add-llm`\)\.$'
    )
    with self.assertRaisesRegex(ValueError, msg):
      router_lib.route(none, self.emb[:2], lam=0.0)
    with self.assertRaisesRegex(
        ValueError, r'^llm_names: a router needs at least one LLM, got none\.$'
    ):
      router_lib.from_clustering(
          none.clustering,
          none.probe_emb_pd,
          np.zeros((300, 0)),
          np.zeros((300, 0), bool),
          np.zeros((0,)),
          (),
          probe_ids=none.probe_ids,
          probe_texts=none.probe_texts,
      )


if __name__ == '__main__':
  absltest.main()
