"""A new router in one module: linear low-rank UniRoute.

The worked example of ``docs/extending.md``. The cluster map is
``Phi(x) = softmax(A (B phi(x)))`` with a rank-``r`` factorised weight
(``B: [r, d]``, ``A: [k, r]``), the linear low-rank map the paper's eq. 10
discussion suggests. Like UniRoute (LearnedMap) it is fitted on the training
LLMs' labels of the training prompts only, against ``psi`` computed from the
probe (validation) labels; test LLMs enter only through their ``psi``.

Run it through the protocol and the CLI with no other edit:

  unirouter evaluate --data alpacaeval \\
    --methods uniroute_kmeans,examples.low_rank_uniroute:estimator \\
    --trials 20 --out results/low_rank
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from unirouter_jax.core import kmeans, routing
from unirouter_jax.core import psi as features
from unirouter_jax.core.structs import TrialInputs
from unirouter_jax.estimators.base import Estimator


def _phi(theta, emb_qd, cluster_mask_k):
  logits_qk = (emb_qd @ theta['b_rd'].T) @ theta['a_kr'].T
  logits_qk = jnp.where(cluster_mask_k, logits_qk, -1e9)
  return jnp.where(cluster_mask_k, jax.nn.softmax(logits_qk, -1), 0.0)


def _loss(theta, emb_bd, err_bm, w_bm, psi_km, cluster_mask_k, eps=1e-4):
  gamma_bm = jnp.clip(
      _phi(theta, emb_bd, cluster_mask_k) @ psi_km, eps, 1 - eps
  )
  nll_bm = -(err_bm * jnp.log(gamma_bm) + (1 - err_bm) * jnp.log1p(-gamma_bm))
  return jnp.sum(w_bm * nll_bm) / jnp.maximum(jnp.sum(w_bm), 1.0)


def fit(key, inputs: TrialInputs, hp, pad, *, rank=16, epochs=5, batch=64):
  """Clusters + probe ``psi`` as in UniRoute, then the low-rank map."""
  k_key, a_key, b_key, s_key = jax.random.split(key, 4)
  n, d = inputs.emb_nd.shape
  weight_n = jnp.zeros((n,)).at[inputs.train_idx].set(1.0)
  clustering = kmeans.kmeans(k_key, inputs.emb_nd, weight_n, hp['k'], k_max=pad)
  mask_k = clustering.cluster_mask_k
  feats = features.llm_features(
      kmeans.one_hot_assign(inputs.emb_nd[inputs.val_idx], clustering),
      inputs.error_nm[inputs.val_idx],
      inputs.visible_nm[inputs.val_idx],
      cluster_mask_k=mask_k,
  )
  theta = {
      'a_kr': jax.random.normal(a_key, (pad, rank)) / np.sqrt(rank),
      'b_rd': jax.random.normal(b_key, (rank, d)) / np.sqrt(d),
  }
  opt = optax.adam(hp['lr'])
  w_nm = (inputs.visible_nm & inputs.train_llm_m).astype(jnp.float32)
  n_train = inputs.train_idx.shape[0]
  steps = max(1, n_train // batch)

  def step(carry, pos_b):
    theta, state = carry
    idx = inputs.train_idx[pos_b]
    grads = jax.grad(_loss)(
        theta,
        inputs.emb_nd[idx],
        inputs.error_nm[idx],
        w_nm[idx],
        feats.psi_km,
        mask_k,
    )
    updates, state = opt.update(grads, state, theta)
    return (optax.apply_updates(theta, updates), state), None

  def epoch(carry, ekey):
    perm = jax.random.permutation(ekey, n_train)[: steps * batch]
    return jax.lax.scan(step, carry, perm.reshape(steps, -1))[0], None

  (theta, _), _ = jax.lax.scan(
      epoch, (theta, opt.init(theta)), jax.random.split(s_key, epochs)
  )
  return {'theta': theta, 'psi_km': feats.psi_km, 'mask_k': mask_k}


def gamma(params, emb_qd, inputs, pad):
  """Estimated errors ``[q, m]`` of every LLM."""
  del inputs, pad
  phi_qk = _phi(params['theta'], emb_qd, params['mask_k'])
  return routing.uniroute_gamma(phi_qk, params['psi_km'])


def estimator(*, rank: int = 16, epochs: int = 5) -> Estimator:
  """The low-rank UniRoute estimator (K chosen per trial, method.md 2.4)."""

  def grid(n_train, n_val):
    ks = np.asarray([4, 8, 16, 32], np.int32)
    ks = ks[ks <= n_train]
    return {'k': ks, 'lr': np.full(ks.shape, 5e-3, np.float32)}

  return Estimator(
      name='uniroute_low_rank',
      fit=functools.partial(fit, rank=rank, epochs=epochs),
      gamma=gamma,
      hp_grid=grid,
      pad_key='k',
      description=f'UniRoute with a rank-{rank} linear cluster map.',
  )
