"""The NumPy + scikit-learn reference of the protocol, for protocol_bench.

No JAX, optax or torch. Written from method.md (sections 2-3) and the
project's choices stated there, not from the JAX code. The evaluation
(plug-in rule over the lambda grid, ZeroRouter hull, upper envelope, Area /
Area(50%) / QNC, the Oracle) is reused from the independent reference
``tests/reference/numpy_protocol.py``; this module adds what it lacks:

* K selection (method.md 2.4) for K-means (``KMeans(n_init=3,
  max_iter=100, tol=1e-4)`` on the training prompts) and K-NN: ``psi`` of
  the training LLMs from the training prompts, the validation prompts
  routed among them, the largest validation Area wins; the test view at
  that K takes ``psi`` from the validation prompts and routes the test
  prompts among the test LLMs (:class:`Trial`, :func:`run`).
* UniRoute (LearnedMap) (:func:`fit_learned_map`), as the project's
  default (``k_from='own'``): for each K of its 4-point grid, its own
  K-means clusters and a map fitted with ``psi`` of the training LLMs from
  the training prompts, scored on the validation prompts among the training
  LLMs; at the best K, a map fitted with the validation ``psi`` routes the
  test prompts. ``uniroute_learned_map_kmeans_k``: one map per trial at the
  K (and on the clusters) of the K-means selection. The network:
  ``BatchNorm (scale only) -> [Dense 128 (no bias), BatchNorm, ReLU] x 2 ->
  Dense K -> softmax``; binary log-loss of ``clip(Phi(x)^T psi, 1e-4,
  1 - 1e-4)`` against the training LLMs' errors on the training prompts,
  averaged over the present labels, ``psi`` of the training LLMs from the
  fitting view's probe prompts; Adam lr 5e-3, batch 64, 5 epochs, BatchNorm momentum
  0.9 (running averages at test time).
* The clairvoyant MLP (``d -> 100 -> 100 -> m``, ReLU) and MatFac
  (``logits = x B A^T + b``, rank 64) (:func:`fit_oracle`), trained on the
  training prompts with the labels of the training and test LLMs: sigmoid
  log-loss; Adam lr 1e-3, batch 64, up to 30 epochs; the parameters of the
  best validation loss are kept, and training stops after 5 epochs without
  improvement (patience 5, [project choice, new]).

The networks are float32 with forward and backward passes written out by
hand, and Adam as ``optax.adam`` defines it. Every epoch draws a fresh
permutation of the training prompts and drops the remainder.
Initialisation follows flax's defaults: LeCun truncated-normal kernels,
zero biases, unit BatchNorm scales (epsilon 1e-5, biased batch variance).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time

import numpy as np
from scipy.special import expit, log_softmax
from sklearn.cluster import KMeans

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.reference import numpy_protocol as np_ref  # noqa: E402

F32 = np.float32
BN_EPS = 1e-5
TRUNC_STD = 0.87962566103423978  # std of a standard normal cut at +-2
METHOD_IDS = {
    'uniroute_learned_map': 1,
    'mlp_oracle': 2,
    'matfac_oracle': 3,
    'mlp_retrained': 4,
    'matfac_retrained': 5,
}


# -------------------------------------------------------------- protocol ----


@dataclasses.dataclass(frozen=True)
class View:
  """One routing problem of a trial: ``psi`` and the rule's costs from the
  ``probe`` prompts, the ``query`` prompts routed among the ``pool`` LLMs.

  ``query`` keeps only the prompts labelled for every pool LLM (E).
  """

  probe: np.ndarray
  query: np.ndarray
  pool: np.ndarray
  q_probe: np.ndarray  # [v, p] probe labels, NaN where missing
  c_rule: np.ndarray  # [p] mean cost on the probe prompts
  cost_e: np.ndarray  # [|E|, p] realised costs
  quality_e: np.ndarray  # [|E|, p]

  @classmethod
  def create(cls, d, probe, query, pool):
    e = np_ref.eval_prompts(d['quality'], query, pool)
    return cls(
        probe=probe,
        query=e,
        pool=pool,
        q_probe=d['quality'][np.ix_(probe, pool)],
        c_rule=np_ref.rule_costs(d['cost'], probe)[pool],
        cost_e=d['cost'][np.ix_(e, pool)],
        quality_e=d['quality'][np.ix_(e, pool)],
    )

  def curve(self, gamma_ep=None, points=None) -> dict:
    """Area, Area(50%), QNC of the plug-in rule on ``gamma`` (or of given
    raw ``(cost, quality)`` points)."""
    llm_cost, llm_quality = self.cost_e.mean(0), self.quality_e.mean(0)
    if points is None:
      lam = np_ref.lambda_grid(self.c_rule)
      points = np_ref.plugin_points(
          gamma_ep, self.c_rule, self.cost_e, self.quality_e, lam
      )
    c = np_ref.curve_from_points(*points, llm_cost, llm_quality)
    return {k: c[k] for k in ('area', 'area50', 'qnc')}


def cluster_psi(assign_v, q_vp, k) -> np.ndarray:
  """``[k, p]`` mean error per cluster over the labelled probe prompts; the
  LLM's global probe error where a cluster has none (0.5 without labels)."""
  lab = ~np.isnan(q_vp)
  err = np.where(lab, 1.0 - q_vp, 0.0)
  onehot = np.zeros((len(assign_v), k))
  onehot[np.arange(len(assign_v)), assign_v] = 1.0
  cnt, tot = onehot.T @ lab, onehot.T @ err
  return np.where(cnt > 0, tot / np.maximum(cnt, 1), global_error(q_vp))


def global_error(q_vp) -> np.ndarray:
  """``[p]`` mean error over the labelled prompts (0.5 with none)."""
  lab = ~np.isnan(q_vp)
  cnt = lab.sum(0)
  tot = np.where(lab, 1.0 - q_vp, 0.0).sum(0)
  return np.where(cnt > 0, tot / np.maximum(cnt, 1), np_ref.NO_LABEL_ERROR)


def knn_gammas(emb_qd, emb_vd, q_vp, ks, chunk=128) -> np.ndarray:
  """``[G, q, p]`` mean error over the ``k`` nearest probe prompts, per k.

  One sort of the ``max(ks)`` nearest per query; cumulative sums give every
  k. Unlabelled neighbours are skipped; none labelled: the global error.
  """
  lab = ~np.isnan(q_vp)
  err = np.where(lab, 1.0 - q_vp, 0.0).astype(np.float32)
  lab, fallback = lab.astype(np.float32), global_error(q_vp)
  v2 = np.einsum('vd,vd->v', emb_vd, emb_vd)
  k_max = int(max(ks))
  out = np.empty((len(ks), len(emb_qd), q_vp.shape[1]))
  for lo in range(0, len(emb_qd), chunk):
    dist = v2 - 2.0 * (emb_qd[lo : lo + chunk] @ emb_vd.T)
    nn = np.argpartition(dist, k_max - 1, axis=1)[:, :k_max]
    order = np.argsort(np.take_along_axis(dist, nn, 1), axis=1, kind='stable')
    nn = np.take_along_axis(nn, order, 1)
    cnt, tot = np.cumsum(lab[nn], axis=1), np.cumsum(err[nn], axis=1)
    for g, k in enumerate(ks):
      c, t = cnt[:, k - 1], tot[:, k - 1]
      out[g, lo : lo + chunk] = np.where(c > 0, t / np.maximum(c, 1), fallback)
  return out


class Trial:
  """One trial of the reference; shared pieces are computed once, lazily."""

  def __init__(self, d, split, seed):
    self.d, self.seed = d, seed
    self.train, self.val, self.test = (
        split['train_idx'],
        split['val_idx'],
        split['test_idx'],
    )
    self.train_llms = np.flatnonzero(split['train_llm_m'])
    self.test_llms = np.flatnonzero(split['test_llm_m'])
    self.seen_m = split['train_llm_m'] | split['test_llm_m']

  def emb(self, idx):
    return self.d['emb'][idx]

  def rng(self, method):
    return np.random.default_rng((self.seed, METHOD_IDS.get(method, 0)))

  @functools.cached_property
  def test_view(self) -> View:
    return View.create(self.d, self.val, self.test, self.test_llms)

  @functools.cached_property
  def selection_view(self) -> View:
    return View.create(self.d, self.train, self.val, self.train_llms)

  @functools.cached_property
  def kmeans(self):
    """``(K, fitted KMeans, [n_val] validation clusters)`` of the selected K."""
    sel, best = self.selection_view, None
    for k in self.d['kmeans_grid']:
      km = KMeans(
          n_clusters=int(k),
          n_init=3,
          max_iter=100,
          tol=1e-4,
          random_state=self.seed,
      ).fit(self.emb(self.train))
      psi = cluster_psi(km.labels_, sel.q_probe, int(k))
      area = sel.curve(psi[km.predict(self.emb(sel.query))])['area']
      if best is None or area > best[0]:
        best = (area, int(k), km)
    _, k, km = best
    return k, km, km.predict(self.emb(self.val))


def ref_zero_router(t: Trial) -> dict:
  """The test LLMs on the hull of (validation cost, validation error)."""
  v = t.test_view
  err_val = np_ref.val_errors(t.d['quality'], t.val)[t.test_llms]
  hull = np_ref.zero_router_hull(v.c_rule, err_val)
  points = (v.cost_e.mean(0)[hull], v.quality_e.mean(0)[hull])
  return v.curve(points=points)


def ref_knn(t: Trial) -> dict:
  """K-NN with k chosen on the selection view (method.md 2.3, 2.4)."""
  sel, v, grid = t.selection_view, t.test_view, t.d['knn_grid']
  gammas = knn_gammas(t.emb(sel.query), t.emb(sel.probe), sel.q_probe, grid)
  k = int(grid[np.argmax([sel.curve(g)['area'] for g in gammas])])
  gamma = knn_gammas(t.emb(v.query), t.emb(v.probe), v.q_probe, [k])[0]
  return dict(v.curve(gamma), selected=k)


def ref_kmeans(t: Trial) -> dict:
  """UniRoute (K-means) at the selected K (method.md 2.1)."""
  k, km, assign_v = t.kmeans
  v = t.test_view
  psi = cluster_psi(assign_v, v.q_probe, k)
  return dict(v.curve(psi[km.predict(t.emb(v.query))]), selected=k)


def _map_gamma(t: Trial, rng, km, k, fit_probe, view: View) -> np.ndarray:
  """A map fitted with ``psi`` of the training LLMs from ``fit_probe``
  (on the training prompts), then ``Phi(x)^T psi`` of ``view``."""
  q_fit = t.d['quality'][np.ix_(fit_probe, t.train_llms)]
  q_tr = t.d['quality'][np.ix_(t.train, t.train_llms)]
  params, stats = fit_learned_map(
      rng,
      t.emb(t.train),
      1.0 - q_tr,
      ~np.isnan(q_tr),
      cluster_psi(km.predict(t.emb(fit_probe)), q_fit, k),
  )
  phi = learned_map_phi(params, stats, t.emb(view.query))
  return phi @ cluster_psi(km.predict(t.emb(view.probe)), view.q_probe, k)


def ref_learned_map(t: Trial) -> dict:
  """UniRoute (LearnedMap), K chosen by its own maps (method.md 2.2, 2.4)."""
  sel, best = t.selection_view, None
  rng = t.rng('uniroute_learned_map')
  for k in t.d['learned_map_grid']:
    km = KMeans(
        n_clusters=int(k), n_init=3, max_iter=100, tol=1e-4,
        random_state=t.seed + 1,
    ).fit(t.emb(t.train))  # fmt: skip
    area = sel.curve(_map_gamma(t, rng, km, int(k), t.train, sel))['area']
    if best is None or area > best[0]:
      best = (area, int(k), km)
  _, k, km = best
  v = t.test_view
  return dict(v.curve(_map_gamma(t, rng, km, k, t.val, v)), selected=k)


def ref_learned_map_kmeans_k(t: Trial) -> dict:
  """UniRoute (LearnedMap) at the K-means K, on its clusters."""
  k, km, _ = t.kmeans
  v = t.test_view
  gamma = _map_gamma(t, t.rng('uniroute_learned_map'), km, k, t.val, v)
  return dict(v.curve(gamma), selected=k)


def _oracle(kind):
  """The clairvoyant ``kind`` oracle as a reference method."""

  def fit_and_route(t: Trial) -> dict:
    def labels(idx):
      q = t.d['quality'][idx]
      return t.emb(idx), q, ~np.isnan(q) & t.seen_m[None, :]

    params, best, ran = fit_oracle(
        t.rng(f'{kind}_oracle'), kind, labels(t.train), labels(t.val)
    )
    v = t.test_view
    gamma = oracle_gamma(params, kind, t.emb(v.query))[:, v.pool]
    return dict(v.curve(gamma), best_epoch=best, epochs_run=ran)

  return fit_and_route


def _retrained(kind):
  """``kind`` retrained on the probe prompts labelled by every LLM (the
  best-validation checkpoint on the same prompts)."""

  def fit_and_route(t: Trial) -> dict:
    q = t.d['quality'][t.val]
    probe = (t.emb(t.val), q, ~np.isnan(q) & t.seen_m[None, :])
    params, best, ran = fit_oracle(
        t.rng(f'{kind}_retrained'), kind, probe, probe
    )
    v = t.test_view
    gamma = oracle_gamma(params, kind, t.emb(v.query))[:, v.pool]
    return dict(v.curve(gamma), best_epoch=best, epochs_run=ran)

  return fit_and_route


REFERENCE = {
    'zero_router': ref_zero_router,
    'knn': ref_knn,
    'uniroute_kmeans': ref_kmeans,
    'uniroute_learned_map': ref_learned_map,
    'uniroute_learned_map_kmeans_k': ref_learned_map_kmeans_k,
    'mlp_oracle': _oracle('mlp'),
    'matfac_oracle': _oracle('matfac'),
    'mlp_retrained': _retrained('mlp'),
    'matfac_retrained': _retrained('matfac'),
}


def run(d, methods, repeats=1) -> tuple[float, list[dict]]:
  """``(seconds, per-trial {method: metrics})`` of every trial in ``d``;
  the fastest of ``repeats`` runs."""
  fields = ('train_idx', 'val_idx', 'test_idx', 'train_llm_m', 'test_llm_m')
  best = np.inf
  for _ in range(repeats):
    t0, out = time.perf_counter(), []
    for s, seed in enumerate(d['trial_index']):
      trial = Trial(d, {f: d[f][s] for f in fields}, int(seed))
      row = {'oracle': trial.test_view.curve(1.0 - trial.test_view.quality_e)}
      row.update({name: REFERENCE[name](trial) for name in methods})
      out.append(row)
    best = min(best, time.perf_counter() - t0)
  return best, out


# -------------------------------------------------------------- networks ----


def lecun_normal(rng, fan_in: int, fan_out: int) -> np.ndarray:
  """``[fan_in, fan_out]`` truncated normal (+-2 sd) of variance 1/fan_in."""
  x = rng.standard_normal((fan_in, fan_out))
  bad = np.abs(x) > 2
  while bad.any():
    x[bad] = rng.standard_normal(int(bad.sum()))
    bad = np.abs(x) > 2
  return (x * np.sqrt(1.0 / fan_in) / TRUNC_STD).astype(F32)


class Adam:
  """``optax.adam(lr)`` on a dict of float32 arrays, updated in place."""

  def __init__(self, params, lr, b1=0.9, b2=0.999, eps=1e-8):
    self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
    self.mu = {k: np.zeros_like(v) for k, v in params.items()}
    self.nu = {k: np.zeros_like(v) for k, v in params.items()}
    self.t = 0

  def step(self, params, grads):
    self.t += 1
    c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
    for k, g in grads.items():
      mu, nu = self.mu[k], self.nu[k]
      mu *= self.b1
      mu += (1 - self.b1) * g
      nu *= self.b2
      nu += (1 - self.b2) * g * g
      params[k] -= (self.lr / c1) * mu / (np.sqrt(nu / c2) + self.eps)


def _batches(rng, n: int, batch_size: int):
  """One epoch's ``[steps, batch]`` positions (remainder dropped)."""
  bs = min(batch_size, n)
  steps = n // bs
  return rng.permutation(n)[: steps * bs].reshape(steps, bs)


# ------------------------------------------------------------ LearnedMap ----


def _bn_train(x, scale, bias):
  """Training-mode BatchNorm: ``(y, cache, batch mean, batch variance)``."""
  mean, var = x.mean(0), x.var(0)
  inv = 1.0 / np.sqrt(var + BN_EPS)
  xhat = (x - mean) * inv
  y = xhat * scale if bias is None else xhat * scale + bias
  return y, (xhat, inv), mean, var


def _bn_back(dy, cache, scale):
  """``(d input, d scale, d bias)`` of a training-mode BatchNorm."""
  xhat, inv = cache
  dxhat = dy * scale
  dx = inv * (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0))
  return dx, (dy * xhat).sum(0), dy.sum(0)


def init_learned_map(rng, d: int, k: int, hidden: int = 128):
  """``(params, running stats)`` of the cluster map network."""
  params = {
      's0': np.ones(d, F32),
      'w1': lecun_normal(rng, d, hidden),
      's1': np.ones(hidden, F32),
      'b1': np.zeros(hidden, F32),
      'w2': lecun_normal(rng, hidden, hidden),
      's2': np.ones(hidden, F32),
      'b2': np.zeros(hidden, F32),
      'w3': lecun_normal(rng, hidden, k),
      'c3': np.zeros(k, F32),
  }
  stats = {
      f'mean{i}': np.zeros(n, F32) for i, n in enumerate((d, hidden, hidden))
  }
  stats.update(
      {f'var{i}': np.ones(n, F32) for i, n in enumerate((d, hidden, hidden))}
  )
  return params, stats


def _map_forward(p, x):
  """Training-mode logits ``[b, k]``, the backward cache, batch moments."""
  h0, c0, m0, v0 = _bn_train(x, p['s0'], None)
  a1, c1, m1, v1 = _bn_train(h0 @ p['w1'], p['s1'], p['b1'])
  h1 = np.maximum(a1, 0)
  a2, c2, m2, v2 = _bn_train(h1 @ p['w2'], p['s2'], p['b2'])
  h2 = np.maximum(a2, 0)
  cache = (h0, c0, c1, a1, h1, c2, a2, h2)
  return h2 @ p['w3'] + p['c3'], cache, ((m0, v0), (m1, v1), (m2, v2))


def _map_backward(p, cache, dz):
  """Gradients of every parameter from ``dz = d loss / d logits``."""
  h0, c0, c1, a1, h1, c2, a2, h2 = cache
  g = {'w3': h2.T @ dz, 'c3': dz.sum(0)}
  da2, g['s2'], g['b2'] = _bn_back((dz @ p['w3'].T) * (a2 > 0), c2, p['s2'])
  g['w2'] = h1.T @ da2
  da1, g['s1'], g['b1'] = _bn_back((da2 @ p['w2'].T) * (a1 > 0), c1, p['s1'])
  g['w1'] = h0.T @ da1
  _, g['s0'], _ = _bn_back(da1 @ p['w1'].T, c0, p['s0'])
  return g


def _map_loss_grad(p, x, err, w, psi, eps):
  """Log-loss of ``clip(softmax(f(x)) @ psi)`` and its gradients."""
  z, cache, moments = _map_forward(p, x)
  phi = np.exp(log_softmax(z, axis=1))
  raw = phi @ psi
  gam = np.clip(raw, eps, 1 - eps)
  total = max(float(w.sum()), 1.0)
  nll = -(err * np.log(gam) + (1 - err) * np.log1p(-gam))
  inside = (raw > eps) & (raw < 1 - eps)
  dg = w * inside * ((1 - err) / (1 - gam) - err / gam) / total
  dphi = dg @ psi.T
  dz = phi * (dphi - (dphi * phi).sum(1, keepdims=True))
  return float((w * nll).sum() / total), _map_backward(p, cache, dz), moments


def _update_stats(stats, moments, momentum):
  for i, (mean, var) in enumerate(moments):
    stats[f'mean{i}'] = momentum * stats[f'mean{i}'] + (1 - momentum) * mean
    stats[f'var{i}'] = momentum * stats[f'var{i}'] + (1 - momentum) * var


def fit_learned_map(
    rng,
    x_td,
    err_tm,
    w_tm,
    psi_km,
    *,
    lr=5e-3,
    epochs=5,
    batch_size=64,
    momentum=0.9,
    eps=1e-4,
):
  """Fits the LearnedMap on the training prompts (method.md 2.2).

  Args:
    rng: ``np.random.Generator`` (initialisation and minibatch order).
    x_td: ``[n_train, d]`` training embeddings.
    err_tm: ``[n_train, m_train]`` errors ``1 - quality`` of the training
      LLMs (any value where ``w_tm`` is False).
    w_tm: ``[n_train, m_train]`` bool, the labels present.
    psi_km: ``[K, m_train]`` the training LLMs' per-cluster errors.
    lr: Adam learning rate.
    epochs: passes over the training prompts.
    batch_size: minibatch size.
    momentum: BatchNorm momentum of the running averages.
    eps: clipping of ``gamma``.

  Returns:
    ``(params, stats)`` for :func:`learned_map_phi`.
  """
  x_td = np.asarray(x_td, F32)
  err_tm = np.where(w_tm, err_tm, 0).astype(F32)
  w_tm = np.asarray(w_tm, F32)
  psi_km = np.asarray(psi_km, F32)
  params, stats = init_learned_map(rng, x_td.shape[1], psi_km.shape[0])
  opt = Adam(params, lr)
  for _ in range(epochs):
    for pos in _batches(rng, x_td.shape[0], batch_size):
      _, grads, moments = _map_loss_grad(
          params, x_td[pos], err_tm[pos], w_tm[pos], psi_km, eps
      )
      opt.step(params, grads)
      _update_stats(stats, moments, momentum)
  return params, stats


def learned_map_phi(params, stats, x_qd) -> np.ndarray:
  """``[q, K]`` soft cluster assignments, BatchNorm in eval mode."""
  p = params

  def bn(x, i, scale, bias=0.0):
    inv = 1.0 / np.sqrt(stats[f'var{i}'] + BN_EPS)
    return (x - stats[f'mean{i}']) * inv * scale + bias

  h = bn(np.asarray(x_qd, F32), 0, p['s0'])
  h = np.maximum(bn(h @ p['w1'], 1, p['s1'], p['b1']), 0)
  h = np.maximum(bn(h @ p['w2'], 2, p['s2'], p['b2']), 0)
  return np.exp(log_softmax(h @ p['w3'] + p['c3'], axis=1))


# --------------------------------------------------------------- oracles ----

ORACLE_SIZE = {'mlp': 100, 'matfac': 64}


def init_oracle(rng, kind: str, d: int, m: int) -> dict:
  """Parameters of the MLP (hidden 100) or MatFac (rank 64) oracle."""
  size = ORACLE_SIZE[kind]
  if kind == 'mlp':
    return {
        'w1': lecun_normal(rng, d, size),
        'b1': np.zeros(size, F32),
        'w2': lecun_normal(rng, size, size),
        'b2': np.zeros(size, F32),
        'w3': lecun_normal(rng, size, m),
        'b3': np.zeros(m, F32),
    }
  return {
      'proj': lecun_normal(rng, d, size),
      'llm': (rng.standard_normal((m, size)) / np.sqrt(size)).astype(F32),
      'bias': np.zeros(m, F32),
  }


def _oracle_forward(p, kind, x):
  """Logits ``[b, m]`` of being correct and the backward cache."""
  if kind == 'mlp':
    h1 = np.maximum(x @ p['w1'] + p['b1'], 0)
    h2 = np.maximum(h1 @ p['w2'] + p['b2'], 0)
    return h2 @ p['w3'] + p['b3'], (x, h1, h2)
  u = x @ p['proj']
  return u @ p['llm'].T + p['bias'], (x, u)


def _oracle_backward(p, kind, cache, dz):
  if kind == 'mlp':
    x, h1, h2 = cache
    g = {'w3': h2.T @ dz, 'b3': dz.sum(0)}
    dh = (dz @ p['w3'].T) * (h2 > 0)
    g['w2'], g['b2'] = h1.T @ dh, dh.sum(0)
    dh = (dh @ p['w2'].T) * (h1 > 0)
    g['w1'], g['b1'] = x.T @ dh, dh.sum(0)
    return g
  x, u = cache
  return {
      'llm': dz.T @ u,
      'bias': dz.sum(0),
      'proj': x.T @ (dz @ p['llm']),
  }


def _bce(z, y, w):
  """Mean sigmoid log-loss over the weighted labels and ``d loss / d z``."""
  total = max(float(w.sum()), 1.0)
  nll = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
  return float((w * nll).sum() / total), w * (expit(z) - y) / total


def _oracle_val_loss(p, kind, x, y, w):
  return _bce(_oracle_forward(p, kind, x)[0], y, w)[0]


def fit_oracle(
    rng,
    kind,
    train,
    val,
    *,
    lr=1e-3,
    epochs=30,
    patience=5,
    batch_size=64,
):
  """Fits a clairvoyant oracle with a best-validation checkpoint.

  Args:
    rng: ``np.random.Generator``.
    kind: ``'mlp'`` or ``'matfac'``.
    train: ``(x [n, d], correct [n, m], present [n, m])`` training prompts.
    val: the same for the validation prompts (checkpoint selection).
    lr: Adam learning rate.
    epochs: most passes over the training prompts.
    patience: stop after this many epochs without a lower validation loss.
    batch_size: minibatch size.

  Returns:
    ``(params of the best epoch, best epoch, epochs run)``.
  """
  (x, y, w), (xv, yv, wv) = (
      (np.asarray(a, F32), np.where(c, b, 0).astype(F32), np.asarray(c, F32))
      for a, b, c in (train, val)
  )
  params = init_oracle(rng, kind, x.shape[1], y.shape[1])
  opt = Adam(params, lr)
  best, best_loss, best_epoch, since = None, np.inf, -1, 0
  for e in range(epochs):
    for pos in _batches(rng, x.shape[0], batch_size):
      z, cache = _oracle_forward(params, kind, x[pos])
      _, dz = _bce(z, y[pos], w[pos])
      opt.step(params, _oracle_backward(params, kind, cache, dz))
    loss = _oracle_val_loss(params, kind, xv, yv, wv)
    if loss < best_loss:
      best = {k: v.copy() for k, v in params.items()}
      best_loss, best_epoch, since = loss, e, 0
    else:
      since += 1
      if since >= patience:
        return best, best_epoch, e + 1
  return best, best_epoch, epochs


def oracle_gamma(params, kind, x_qd) -> np.ndarray:
  """``[q, m]`` estimated errors ``1 - sigmoid(logit)``."""
  z, _ = _oracle_forward(params, kind, np.asarray(x_qd, F32))
  return expit(-z)
