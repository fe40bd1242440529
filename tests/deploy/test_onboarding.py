"""Properties of onboarding a new LLM with chosen probe prompts
(deploy/onboarding.py)."""

import numpy as np
from absl.testing import absltest, parameterized

from tests.deploy import test_router
from unirouter_jax.deploy import onboarding
from unirouter_jax.deploy import router as router_lib

K = 4
N_PROBE = 400


def easy_cluster_data(seed=0, n=1200, d=6, m=5):
  """Four separated blobs; in blob 0 every LLM is always right, elsewhere
  per-blob accuracies differ between LLMs. LLM ``m - 1`` is the new one."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(K, d)) * 5.0
  cluster_n = np.arange(n) % K
  emb = (centres[cluster_n] + 0.1 * rng.normal(size=(n, d))).astype(np.float32)
  acc_km = rng.uniform(0.2, 0.9, size=(K, m))
  acc_km[0] = 1.0
  quality = (rng.uniform(size=(n, m)) < acc_km[cluster_n]).astype(np.float32)
  cost = np.linspace(1.0, 2.0, m).astype(np.float32)
  return emb, quality, cost, cluster_n


def fit(emb, quality, cost):
  return test_router.fit(emb, quality, cost, k=K, n_probe=N_PROBE)


class OnboardingTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.emb, cls.q, cls.cost, cls.cl = easy_cluster_data()
    m = cls.q.shape[1]
    cls.full = fit(cls.emb, cls.q, cls.cost)
    cls.base = router_lib.remove_llm(cls.full, f'llm{m - 1}')
    cls.name, cls.new_cost = f'llm{m - 1}', float(cls.cost[-1])
    cls.table = {f'p{i}': float(cls.q[i, -1]) for i in range(N_PROBE)}
    # The probe prompts' cluster under the router (its own numbering).
    cls.probe_cluster = np.asarray(
        router_lib.route(cls.base, cls.emb[:N_PROBE], lam=0.0).cluster_q
    )
    cls.easy = cls.probe_cluster[cls.cl[:N_PROBE] == 0][0]

  def propose(self, strategy, budget, labels=None, **kw):
    return onboarding.next_probes(
        self.base,
        self.name,
        budget,
        strategy=strategy,
        labels=labels,
        cost=self.new_cost,
        **kw,
    )

  @parameterized.parameters('random', 'stratified', 'active')
  def test_exactly_budget_new_prompts_never_labelled_ones(self, strategy):
    so_far = {f'p{i}': self.table[f'p{i}'] for i in range(0, 40, 2)}
    prop = self.propose(strategy, 30, labels=so_far, exclude=('p1', 'p3'))
    self.assertLen(prop.probe_ids, 30)
    self.assertLen(set(prop.probe_ids), 30)
    self.assertEmpty(set(prop.probe_ids) & (set(so_far) | {'p1', 'p3'}))
    self.assertEqual(prop.labelled, 20)
    again = self.propose(strategy, 30, labels=so_far, exclude=('p1', 'p3'))
    self.assertEqual(prop.probe_ids, again.probe_ids)  # seeded, repeatable
    # More than is left: every prompt left, once.
    rest = self.propose(strategy, 1000, labels=so_far)
    self.assertLen(rest.probe_ids, N_PROBE - 20)

  @parameterized.parameters('stratified', 'active')
  def test_cluster_every_known_llm_gets_right_gets_few_labels(self, strategy):
    share = {}
    for s in ('random', strategy):
      labels, got = {}, []
      for _ in range(3):  # three batches, labels fed back
        prop = self.propose(s, 20, labels=labels)
        labels.update({p: self.table[p] for p in prop.probe_ids})
        got.extend(prop.indices)
      share[s] = np.mean(self.probe_cluster[np.asarray(got)] == self.easy)
    self.assertGreater(share['random'], 0.15)  # a quarter of the mass
    self.assertLess(share[strategy], 0.5 * share['random'])

  def test_estimate_decreases_as_labels_are_added(self):
    # Mean over label orders (per path it may rise: docs/probing.md).
    sizes = (0, 40, 120, N_PROBE)
    lost = np.zeros((8, len(sizes)))
    left = np.zeros((8, len(sizes)))
    for seed in range(8):
      order = np.random.default_rng(seed).permutation(N_PROBE)
      for i, size in enumerate(sizes):
        labels = {f'p{j}': self.table[f'p{j}'] for j in order[:size]}
        est = onboarding.stopping_estimate(
            self.base, self.name, labels=labels, cost=self.new_cost
        )
        lost[seed, i], left[seed, i] = est.area_lost, est.gain_left
    self.assertTrue(np.all(np.diff(lost[:, 1:].mean(0)) < 0), lost.mean(0))
    self.assertTrue(np.all(np.diff(left.mean(0)) < 0), left.mean(0))
    self.assertTrue(np.all(lost >= 0) and np.all(left >= 0))
    # Every probe prompt labelled: nothing left to gain; the Area lost
    # against the true psi stays (a finite probe set).
    np.testing.assert_allclose(left[:, -1], 0.0, atol=1e-7)
    self.assertTrue(np.all(lost[:, -1] > 0))
    # The gain left never exceeds the Area lost (it is a part of it).
    self.assertTrue(np.all(left <= lost + 1e-7))

  def test_onboard_to_the_end_equals_add_llm_with_every_label(self):
    out, rep = onboarding.onboard(
        self.base, self.name, self.table, cost=self.new_cost, tolerance=0.0
    )
    self.assertEqual(rep.stopped, 'exhausted')
    self.assertLen(rep.labels, N_PROBE)
    np.testing.assert_allclose(out.psi_km, self.full.psi_km, atol=1e-6)
    self.assertEqual(out.llm_names, self.full.llm_names)

  @parameterized.parameters('random', 'active')
  def test_onboard_stops_at_tolerance_with_the_labels_it_used(self, strategy):
    out, rep = onboarding.onboard(
        self.base,
        self.name,
        self.table,
        cost=self.new_cost,
        tolerance=0.01,
        batch=10,
        strategy=strategy,
        min_labels=20,
    )
    self.assertEqual(rep.stopped, 'tolerance')
    self.assertLess(rep.estimate.gain_left, 0.01)
    self.assertGreaterEqual(len(rep.labels), 20)
    self.assertLess(len(rep.labels), N_PROBE)
    labels = [r['labels'] for r in rep.rounds]
    self.assertEqual(labels, sorted(labels))
    self.assertTrue(all(r['gain_left'] >= 0.01 for r in rep.rounds[:-1][2:]))
    # The router is the one add-llm gives with those labels.
    ref = router_lib.add_llm(
        self.base, self.name, self.new_cost, rep.labels, allow_missing=True
    )
    np.testing.assert_allclose(out.psi_km, ref.psi_km, atol=1e-6)
    np.testing.assert_array_equal(out.probe_visible_pm, ref.probe_visible_pm)

  def test_onboard_max_labels_and_unavailable_prompts(self):
    table = dict(list(self.table.items())[::2])  # half the prompts graded
    _, rep = onboarding.onboard(
        self.base,
        self.name,
        table,
        cost=self.new_cost,
        tolerance=0.0,
        batch=16,
        max_labels=50,
        strategy='random',
    )
    self.assertEqual(rep.stopped, 'max_labels')
    self.assertLen(rep.labels, 50)
    self.assertEmpty(set(rep.labels) - set(table))
    self.assertNotEmpty(rep.unavailable)
    self.assertEmpty(set(rep.unavailable) & set(table))

  def test_extends_an_llm_already_in_the_router(self):
    first = {f'p{i}': self.table[f'p{i}'] for i in range(30)}
    part = router_lib.add_llm(
        self.base, self.name, self.new_cost, first, allow_missing=True
    )
    prop = onboarding.next_probes(part, self.name, 25, strategy='active')
    self.assertEqual(prop.labelled, 30)
    self.assertEmpty(set(prop.probe_ids) & set(first))
    ref = self.propose('active', 25, labels=first)
    self.assertEqual(prop.probe_ids, ref.probe_ids)
    self.assertAlmostEqual(
        prop.estimate.area_lost, ref.estimate.area_lost, places=6
    )
    self.assertAlmostEqual(
        prop.estimate.gain_left, ref.estimate.gain_left, places=6
    )

  def test_bad_arguments_name_themselves(self):
    cases = [
        (dict(strategy='greedy'), 'strategy'),
        (dict(budget=0), 'budget'),
        (dict(cost=None), 'cost'),
        (dict(labels={'nope': 1.0}), 'probe_labels'),
        (dict(labels={'p0': 2.0}), 'probe_labels'),
    ]
    for kw, arg in cases:
      args = dict(strategy='active', budget=5, cost=self.new_cost) | kw
      with self.assertRaisesRegex(ValueError, f'^{arg}:'):
        onboarding.next_probes(
            self.base,
            self.name,
            args.pop('budget'),
            strategy=args.pop('strategy'),
            **args,
        )
    with self.assertRaisesRegex(ValueError, '^cost:.*set-cost'):
      onboarding.next_probes(self.full, 'llm0', 5, cost=99.0)
    with self.assertRaisesRegex(ValueError, '^labels: 1 unknown'):
      onboarding.onboard(self.base, 'x', {'zz': 1.0}, cost=1.0)
    with self.assertRaisesRegex(ValueError, '^tolerance:'):
      onboarding.onboard(self.base, 'x', self.table, cost=1.0, tolerance=-1)


if __name__ == '__main__':
  absltest.main()
