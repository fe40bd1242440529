"""Budgeted probing (estimators/probing.py, core/probe.py, partial_psi.py)."""

import functools
import pathlib
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import integrate
from scipy import stats as sps

from tests import synthetic
from unirouter_jax.core import probe, regret
from unirouter_jax.core.structs import RoutingData
from unirouter_jax.estimators import builtin, probing
from unirouter_jax.evaluation import protocol, views

ROOT = pathlib.Path(__file__).resolve().parents[2]
STRATEGIES = ('random', 'stratified', 'active')
RULES = ('plain', 'posterior', 'imputed', 'hierarchical')


def _easy_cluster_data(seed=0, n=800, m=6, k=4):
  """Blobs; in cluster 0 every LLM is always right, elsewhere mixed."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(k, 8)) * 3.0
  cluster_n = rng.integers(0, k, size=n)
  emb = centres[cluster_n] + 0.2 * rng.normal(size=(n, 8))
  acc_km = rng.uniform(0.2, 0.8, size=(k, m))
  acc_km[0] = 1.0
  quality = (rng.uniform(size=(n, m)) < acc_km[cluster_n]).astype(np.float32)
  cost = np.sort(rng.uniform(0.5, 10.0, size=m)).astype(np.float32)
  return RoutingData.create(emb.astype(np.float32), quality, cost), cluster_n


def _trial(data, *, val_fraction=0.25, trial=0):
  cfg = protocol.ProtocolConfig(
      num_trials=trial + 1, test_llm_fraction=0.5, val_fraction=val_fraction
  )
  splits = protocol.make_splits(
      jax.random.key(0), data.num_prompts, data.num_llms, cfg
  )
  split = jax.tree.map(lambda x: x[trial], splits)
  return split, views.trial_inputs(data, split)


def _clustering(split, inputs, k=4):
  fit = builtin.uniroute_kmeans().fit.prompt_fit
  return fit(split.key, inputs, {'k': jnp.asarray(k)}, k)


class AllocationTest(parameterized.TestCase):

  @parameterized.parameters(0, 1, 2)
  def test_dhondt_matches_sequential_reference(self, seed):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 1, size=6)
    avail = rng.integers(0, 12, size=6)
    for n in (0, 1, 7, 25, 80):
      got = np.asarray(
          probe.dhondt_allocation(
              jnp.asarray(w), jnp.asarray(avail), n, budget=80
          )
      )
      ref = np.zeros(6, int)  # one label at a time to the best average
      for _ in range(min(n, avail.sum())):
        score = np.where(ref < avail, w / (ref + 1), -np.inf)
        ref[np.argmax(score)] += 1
      np.testing.assert_array_equal(got, ref)

  def test_pick_in_clusters_takes_smallest_priorities(self):
    rng = np.random.default_rng(0)
    cluster = rng.integers(0, 4, size=50)
    prio = rng.uniform(size=50)
    eligible = rng.uniform(size=50) < 0.8
    n_k = np.asarray([3, 0, 5, 100])
    got = np.asarray(
        probe.pick_in_clusters(
            jnp.asarray(prio, jnp.float32),
            jnp.asarray(cluster, jnp.int32),
            jnp.asarray(eligible),
            jnp.asarray(n_k, jnp.int32),
        )
    )
    for c in range(4):
      idx = np.flatnonzero(eligible & (cluster == c))
      want = set(idx[np.argsort(prio[idx])][: n_k[c]])
      self.assertEqual(set(np.flatnonzero(got & (cluster == c))), want)

  def test_round_sizes(self):
    self.assertEqual(probing.round_sizes(10, 4), [3, 3, 2, 2])
    self.assertEqual(probing.round_sizes(2, 4), [1, 1])
    self.assertEqual(sum(probing.round_sizes(200, 4)), 200)


class RegretTest(parameterized.TestCase):

  def test_decision_regret_matches_numerical_integral(self):
    for a, b, t in ((2.0, 5.0, 0.3), (0.5, 9.5, 0.02), (30.0, 10.0, 0.7)):
      pdf = sps.beta(a, b).pdf
      below, _ = integrate.quad(lambda x, t=t, pdf=pdf: (t - x) * pdf(x), 0, t)
      want = below - max(t - a / (a + b), 0)
      got = float(regret.decision_regret(a, b, t))
      self.assertAlmostEqual(got, want, delta=1e-5)  # tolerance: float32
    self.assertEqual(float(regret.decision_regret(2.0, 3.0, -0.1)), 0.0)
    self.assertEqual(float(regret.decision_regret(2.0, 3.0, 1.5)), 0.0)

  def test_knowledge_gradient_matches_beta_binomial_sum(self):
    # Reference: the sum over s ~ BetaBinomial(n, a, b) written from the
    # definition (scipy's pmf), thresholds inside, outside and at the mean.
    rng = np.random.default_rng(1)
    a = rng.uniform(0.05, 30, size=(3, 4))
    b = rng.uniform(0.5, 60, size=(3, 4))
    t = rng.uniform(-0.1, 1.1, size=(3, 4, 5))
    t[0, 0, 0] = a[0, 0] / (a[0, 0] + b[0, 0])
    horizons = (1, 2, 4, 16, 64)
    got = np.asarray(
        regret.knowledge_gradient(
            jnp.asarray(a, jnp.float32),
            jnp.asarray(b, jnp.float32),
            jnp.asarray(t, jnp.float32),
            horizons,
        )
    )
    self.assertEqual(got.shape, (3, 4, len(horizons), 5))
    for i, j, h, li in np.ndindex(got.shape):
      n = horizons[h]
      s = np.arange(n + 1)
      pmf = sps.betabinom(n, a[i, j], b[i, j]).pmf(s)
      mu_n = (a[i, j] + s) / (a[i, j] + b[i, j] + n)
      mu = a[i, j] / (a[i, j] + b[i, j])
      want = (pmf * np.maximum(t[i, j, li] - mu_n, 0)).sum()
      want -= max(t[i, j, li] - mu, 0)
      # Tolerance: float32 log-gamma sums.
      self.assertAlmostEqual(got[i, j, h, li], want, delta=2e-6)

  def test_knowledge_gradient_at_an_error_near_zero(self):
    # Every LLM right in a cluster: p ~ Beta(0.15, 50), a near-tie. One
    # label that comes out right (probability ~0.997) barely moves the
    # mean, so KG(1) is tiny; a normal approximation would put it at
    # sd(mu_1) * 0.4 ~ 4e-4.
    a, b = jnp.asarray([[0.15]]), jnp.asarray([[50.0]])
    t = (a / (a + b))[..., None] + 1e-5
    kg1 = float(regret.knowledge_gradient(a, b, t, (1,))[0, 0, 0, 0])
    self.assertLess(kg1, 1e-4)
    self.assertGreaterEqual(kg1, 0.0)

  @parameterized.parameters(range(3))
  def test_remaining_gain_is_the_expected_fall_of_the_estimate(self, seed):
    # Label every prompt left of LLM j (``left`` per cluster); the outcome
    # s_c ~ BetaBinomial(left_c, a, b) per cluster, independent. With the
    # rivals and the weights held fixed, the estimate of j afterwards,
    # averaged over the outcomes (enumerated, scipy's pmf), is the
    # estimate now minus the remaining gain.
    a, b, cost, lam, mass = self._random_posterior(seed)
    pool = jnp.ones((4,), bool)
    mask = jnp.ones((3,), bool)
    weight = jnp.asarray([0.1, 0.4, 0.3, 0.2])
    left = jnp.asarray(np.random.default_rng(seed).integers(0, 9, (3, 4)))
    args = (cost, pool, lam, mass, mask, weight)
    gain = np.asarray(regret.remaining_gain(a, b, left, 8, *args))
    now = np.asarray(regret.routing_regret(a, b, *args))
    t = regret.rival_threshold(a / (a + b), cost, pool, lam)
    for j in range(4):
      after = 0.0
      for c in range(3):
        n = int(left[c, j])
        ac, bc = float(a[c, j]), float(b[c, j])
        s = np.arange(n + 1)
        pmf = sps.betabinom(n, ac, bc).pmf(s)
        r = regret.decision_regret(
            jnp.asarray(ac + s, jnp.float32)[:, None],
            jnp.asarray(bc + n - s, jnp.float32)[:, None],
            t[c, j][None, :],
        )
        after += float(mass[c]) * float(pmf @ (np.asarray(r) @ weight))
      self.assertAlmostEqual(now[j] - after, gain[j], delta=2e-6)
    # Nothing left to label: nothing to gain.
    zero = regret.remaining_gain(a, b, jnp.zeros((3, 4), int), 8, *args)
    np.testing.assert_allclose(zero, 0.0, atol=1e-7)

  def test_area_weights(self):
    rng = np.random.default_rng(2)
    k, m = 5, 4
    mu = rng.uniform(0.05, 0.6, size=(k, m))
    cost = np.asarray([1.0, 2.0, 5.0, 9.0])
    mass = rng.dirichlet(np.ones(k))
    lam = np.concatenate([[0.0], np.geomspace(1e-3, 1e2, 15)]) / 8.0
    pool = np.asarray([True, True, True, True])
    got = np.asarray(
        regret.area_weights(
            jnp.asarray(mu, jnp.float32),
            jnp.asarray(cost, jnp.float32),
            jnp.asarray(pool),
            jnp.asarray(lam, jnp.float32),
            jnp.asarray(mass, jnp.float32),
            jnp.ones((k,), bool),
        )
    )
    # Reference: routed cost per lambda, then each point's share of [0, 1]
    # between the midpoints to its neighbours (the ends to 1 and to 0).
    pick = np.argmin(mu[:, :, None] + lam * cost[None, :, None], axis=1)
    x = (mass[:, None] * cost[pick]).sum(0)
    x = (x - cost.min()) / (cost.max() - cost.min())
    edges = np.concatenate([[1.0], (x[:-1] + x[1:]) / 2, [0.0]])
    want = edges[:-1] - edges[1:]
    np.testing.assert_allclose(got, want, atol=1e-6)  # tolerance: float32
    self.assertAlmostEqual(got.sum(), 1.0, delta=1e-6)
    self.assertTrue((got >= 0).all())
    # Equal costs: the cost weight changes nothing, so uniform weights.
    flat = regret.area_weights(
        jnp.asarray(mu, jnp.float32),
        jnp.ones((m,)),
        jnp.asarray(pool),
        jnp.asarray(lam, jnp.float32),
        jnp.asarray(mass, jnp.float32),
        jnp.ones((k,), bool),
    )
    np.testing.assert_allclose(flat, 1.0 / lam.size, rtol=1e-6)

  def _random_posterior(self, seed, k=3, m=4):
    rng = np.random.default_rng(seed)
    a = jnp.asarray(rng.uniform(0.5, 20, size=(k, m)), jnp.float32)
    b = jnp.asarray(rng.uniform(0.5, 20, size=(k, m)), jnp.float32)
    cost = jnp.asarray(np.sort(rng.uniform(0, 1, size=m)), jnp.float32)
    lam = jnp.asarray([0.0, 0.05, 0.2, 1.0])
    mass = jnp.asarray(rng.dirichlet(np.ones(k)), jnp.float32)
    return a, b, cost, lam, mass

  @parameterized.parameters(range(6))
  def test_stopping_estimate_falls_in_expectation_per_label(self, seed):
    # One more label of LLM j in cluster c, drawn from its own posterior
    # predictive: the expected regret of j (rivals fixed) does not rise.
    a, b, cost, lam, mass = self._random_posterior(seed)
    pool = jnp.ones((4,), bool)
    mask = jnp.ones((3,), bool)
    estimate = functools.partial(
        regret.routing_regret,
        cost_m=cost,
        pool_m=pool,
        lam_l=lam,
        mass_k=mass,
        cluster_mask_k=mask,
    )
    now = np.asarray(estimate(a, b))
    for c in range(3):
      for j in range(4):
        mu = float(a[c, j] / (a[c, j] + b[c, j]))
        wrong = float(estimate(a.at[c, j].add(1.0), b)[j])
        right = float(estimate(a, b.at[c, j].add(1.0))[j])
        self.assertLessEqual(mu * wrong + (1 - mu) * right, now[j] + 1e-6)

  @parameterized.parameters(range(4))
  def test_stopping_estimate_falls_with_counts_at_fixed_means(self, seed):
    a, b, cost, lam, mass = self._random_posterior(seed)
    pool = jnp.ones((4,), bool)
    mask = jnp.ones((3,), bool)
    totals = [
        float(
            regret.routing_regret(
                s * a, s * b, cost, pool, lam, mass, mask
            ).sum()
        )
        for s in (1.0, 2.0, 4.0, 8.0, 16.0)
    ]
    self.assertTrue(np.all(np.diff(totals) < 0), totals)

  def test_value_index_properties(self):
    a, b, cost, lam, mass = self._random_posterior(0)
    pool = jnp.asarray([True, True, False, True])
    mass = mass.at[1].set(0.0)
    index = functools.partial(
        regret.value_index,
        horizons=(1, 2, 4, 8, 16),
        cost_m=cost,
        pool_m=pool,
        lam_l=lam,
        mass_k=mass,
        cluster_mask_k=jnp.ones(3, bool),
    )
    g = np.asarray(index(a, b))
    self.assertEqual(g.shape, (3, 4))
    self.assertTrue((g >= 0).all())
    self.assertTrue((g[:, 2] == 0).all())  # off the pool
    self.assertTrue((g[1] == 0).all())  # a cluster without mass
    # More labels behind the same means: each further label is worth less.
    g8 = np.asarray(index(8 * a, 8 * b))
    self.assertTrue((g8 <= g + 1e-9).all())
    self.assertLess(g8.sum(), g.sum())
    # A cluster with no prompt left to label is worth nothing; with fewer
    # left than a horizon, only the horizons it can take count.
    avail = jnp.full((3, 4), 100).at[0].set(0).at[2].set(1)
    ga = np.asarray(index(a, b, avail_km=avail))
    self.assertTrue((ga[0] == 0).all())
    self.assertTrue((ga <= g + 1e-9).all())
    one = np.asarray(index(a, b, horizons=(1,)))
    np.testing.assert_allclose(ga[2], one[2], rtol=1e-6)


class StrategyTest(parameterized.TestCase):

  # Every strategy at a budget of 1, one inside the probe set and one
  # above it (compile time: a budget is a static shape).
  @parameterized.parameters(
      ('random', 1), ('random', 500), ('stratified', 7), ('stratified', 500),
      ('active', 1), ('active', 40), ('active', 500),
  )  # fmt: skip
  def test_masks_have_exactly_budget_real_entries(self, strategy, budget):
    data, _, _ = synthetic.cluster_routing_problem(0, n=400, m=6)
    split, inputs = _trial(data)
    # Pad the probe set as evaluation.padding does: extra entries are test
    # prompts whose labels are hidden, marked by val_mask.
    extra = split.test_idx[:13]
    val_idx = jnp.concatenate([inputs.val_idx, extra])
    real = jnp.arange(val_idx.shape[0]) < inputs.val_idx.shape[0]
    inputs = inputs.replace(val_idx=val_idx, val_mask=real)
    out, _ = probing.choose_probes(
        probing.get_strategy(strategy),
        budget,
        split.key,
        inputs,
        _clustering(split, inputs),
    )
    chosen = np.asarray(out.chosen_vm)
    n_real = int(real.sum())
    np.testing.assert_array_equal(chosen.sum(0), min(budget, n_real))
    self.assertFalse(chosen[~np.asarray(real)].any())

  @parameterized.parameters('stratified', 'active')
  def test_cluster_every_known_llm_gets_right_gets_few_labels(self, strategy):
    data, cluster_n = _easy_cluster_data()
    split, inputs = _trial(data)
    clustering = _clustering(split, inputs)
    budget = 40
    out, ctx = probing.choose_probes(
        probing.get_strategy(strategy), budget, split.key, inputs, clustering
    )
    val = np.asarray(inputs.val_idx)
    easy_v = cluster_n[val] == 0
    share = easy_v.mean()  # its share of the probe set (~1/4)
    pool = np.asarray(inputs.pool_m)
    got = np.asarray(out.chosen_vm)[easy_v][:, pool].sum(0) / budget
    # Random sampling would give it ~share; "few": at most half of that.
    self.assertTrue(np.all(got <= 0.5 * share), (got, share))
    # Every other cluster is still probed.
    counts = np.asarray(ctx.onehot_vk.T @ out.chosen_vm.astype(jnp.float32))
    real_k = np.asarray(ctx.mass_k) > 0
    self.assertGreater((counts[real_k][:, pool] > 0).mean(), 0.7)

  def test_random_subsets_are_nested_across_budgets(self):
    data, _, _ = synthetic.cluster_routing_problem(1, n=400, m=6)
    split, inputs = _trial(data)
    clustering = _clustering(split, inputs)
    masks = [
        np.asarray(
            probing.choose_probes(
                probing.random(), b, split.key, inputs, clustering
            )[0].chosen_vm
        )
        for b in (5, 10, 30)
    ]
    self.assertTrue((masks[0] <= masks[1]).all())
    self.assertTrue((masks[1] <= masks[2]).all())

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, 'strategy'):
      probing.get_strategy('greedy')
    with self.assertRaisesRegex(ValueError, 'budget'):
      probing.budgeted('random', 0)
    with self.assertRaisesRegex(ValueError, 'psi_rule'):
      probing.budgeted('random', 5, psi_rule='median')
    with self.assertRaisesRegex(ValueError, 'rounds'):
      probing.active(0)


class EstimatorTest(parameterized.TestCase):

  def test_shares_uniroute_prompt_side_and_k_selection(self):
    ref = builtin.uniroute_kmeans()
    for s in STRATEGIES:
      est = probing.budgeted(s, 10)
      self.assertIs(est.fit.prompt_fit, ref.fit.prompt_fit)
      self.assertIs(est.selector, ref)
      self.assertIs(est, probing.budgeted(s, 10))  # compiled-program cache
    self.assertEqual(probing.budgeted('active', 20).name, 'probe_active_20')
    self.assertEqual(
        probing.budgeted('random', None, psi_rule='imputed').name,
        'probe_random_all_imp',
    )

  def test_full_budget_reproduces_uniroute_kmeans(self):
    data, _, _ = synthetic.cluster_routing_problem(2, n=500, m=6)
    cfg = protocol.ProtocolConfig(
        num_trials=3,
        test_llm_fraction=0.5,
        val_fraction=0.2,
        num_lambdas=30,
        grid_points=41,
    )
    n_val = protocol.split_sizes(500, 6, cfg)[1]
    ests = {'uniroute_kmeans': builtin.uniroute_kmeans()}
    for s in STRATEGIES:
      ests[s] = probing.budgeted(s, n_val)
    ests['all'] = probing.budgeted('random', None)
    ests['imputed_all'] = probing.budgeted('random', None, psi_rule='imputed')
    res = protocol.run_protocol(jax.random.key(3), data, ests, cfg)
    ref = res.methods['uniroute_kmeans'].metrics
    for name in ests:
      got = res.methods[name].metrics
      # Tolerance: float rounding only (vmapped vs single fit of psi).
      np.testing.assert_allclose(got.area, ref.area, atol=1e-6, rtol=0)
      np.testing.assert_allclose(got.quality_g, ref.quality_g, atol=1e-6)

  # Every strategy and every psi rule at least once (not all 12 pairs:
  # each pair is a program of its own to compile).
  @parameterized.parameters(
      ('random', 'imputed'), ('stratified', 'hierarchical'),
      ('active', 'plain'), ('active', 'posterior'), ('active', 'imputed'),
  )  # fmt: skip
  def test_never_uses_hidden_labels(self, strategy, rule):
    data, _, _ = synthetic.cluster_routing_problem(3, n=400, m=6)
    split, inputs = _trial(data)
    est = probing.budgeted(strategy, 15, psi_rule=rule)
    hp, pad = {'k': jnp.asarray(4)}, 4
    emb_q = data.emb_nd[split.test_idx]

    def fit(inp):
      params = est.fit(split.key, inp, hp, pad)
      return params, est.gamma(params, emb_q, inp, pad)

    params, gamma = fit(inputs)
    hidden_vm = ~params.chosen_vm & inputs.pool_m[None, :]
    val = inputs.val_idx
    for poison in (jnp.nan, 0.37):
      err = inputs.error_nm.at[val].set(
          jnp.where(hidden_vm, poison, inputs.error_nm[val])
      )
      params2, gamma2 = fit(inputs.replace(error_nm=err))
      np.testing.assert_array_equal(params2.chosen_vm, params.chosen_vm)
      np.testing.assert_array_equal(
          params2.features.psi_km, params.features.psi_km
      )
      np.testing.assert_array_equal(gamma2, gamma)
      self.assertTrue(np.isfinite(np.asarray(gamma2)).all())

  def test_fewer_labels_means_fewer_visible_pool_labels(self):
    data, _, _ = synthetic.cluster_routing_problem(4, n=400, m=6)
    split, inputs = _trial(data)
    pool = np.asarray(inputs.pool_m)
    for b in (5, 20):
      params = probing.budgeted('active', b).fit(
          split.key, inputs, {'k': jnp.asarray(4)}, 4
      )
      count = np.asarray(params.features.count_km).sum(0)
      np.testing.assert_array_equal(count[pool], b)
      n_val = inputs.val_idx.shape[0]
      np.testing.assert_array_equal(count[~pool], n_val)  # training LLMs


class StudyTest(absltest.TestCase):

  def test_tiny_study_end_to_end(self):
    sys.path.insert(0, str(ROOT))
    from configs import probe_study as config_lib
    from experiments import probe_study

    config = config_lib.get_config('tiny')
    with tempfile.TemporaryDirectory() as tmp:
      table = probe_study.run(config, tmp, log=lambda s: None)
      folder = pathlib.Path(tmp)
      for name in ('probe_study.json', 'probe_study.md', 'probe_study.png'):
        self.assertTrue((folder / name).exists(), name)
      self.assertEqual(table['trials'], config.protocol.num_trials)
      rows = table['rules']['plain']['rows']
      for s in config.probe.strategies:
        for b in config.probe.budgets:
          self.assertTrue(np.isfinite(rows[f'{s}_{b}']['mean']))
      self.assertIn('active_5_vs_random_10', table['rules']['plain'][
          'half_labels'])  # fmt: skip
      # A rerun resumes from the saved chunks and gives the same table.
      again = probe_study.run(config, tmp, log=lambda s: None)
      self.assertEqual(again['areas'], table['areas'])


if __name__ == '__main__':
  absltest.main()
