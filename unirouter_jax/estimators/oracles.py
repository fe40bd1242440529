"""Clairvoyant MLP and MatFac routers (method.md 2.3).

These are upper references, not fair competitors: they are trained on the
labels of the **test** LLMs on the training prompts and select their
checkpoint on the test LLMs' labels on the validation prompts, so they cannot
route among LLMs unseen in training. Both predict, per prompt and LLM, the
probability that the LLM answers correctly:

* ``kind='mlp'``: ``Dense(hidden), ReLU, Dense(hidden), ReLU, Dense(m)``,
  one sigmoid output per LLM;
* ``kind='matfac'``: ``score_m(x) = <A_m, B phi(x)> + b_m`` with ``B`` a
  ``[d, rank]`` projection and ``A`` the ``[m, rank]`` LLM factors
  (``[project choice]``: a per-LLM bias ``b_m``, which the paper's
  ``A B phi(x)`` omits, so that rank-deficient scores can still match each
  LLM's base rate).

Loss: binary log-loss (``optax.sigmoid_binary_cross_entropy`` on the logits,
so no clipping is needed) over the visible labels of the LLMs in
``llm_mask_m`` on the training prompts. Adam, 30 epochs of minibatches of a
fresh permutation of ``train_idx`` per epoch (remainder dropped). After each
epoch the loss on all of ``val_idx`` is computed inside the loop, and the
parameters with the lowest validation loss so far are carried: the result
is the best-validation checkpoint (the first one on ties).

``[project choice]`` Training stops early once ``PATIENCE`` (5) epochs in a
row have not lowered the validation loss (``lax.while_loop``; under ``vmap``
a batch runs until its last member stops, each member's result unchanged).
The paper's best-validation checkpoint over 30 epochs differs only if the
validation loss falls again after 5 epochs without improvement. On the
bundled sets the best epoch of the MLP is 3-8 (RouterBench subset, LLMRouter
DC), so this saves about half of its training; ``patience=None`` runs all
epochs.

Axis letters as in ``structs.py``, plus ``e``: epochs (this module only).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

Array = jax.Array

KINDS = ('mlp', 'matfac')
# Epochs without a lower validation loss before training stops.
PATIENCE = 5


@struct.dataclass
class OracleParams:
  """A fitted clairvoyant predictor (best-validation checkpoint).

  Attributes:
    params: flax ``params`` of the best-validation epoch.
    loss_t: ``[t]`` training loss of each Adam step (before the step); NaN
      in the epochs not run (early stop).
    val_loss_e: ``[epochs]`` validation loss after each epoch (NaN if not
      run).
    best_epoch: ``[]`` int, the epoch whose parameters are kept (the first
      argmin of ``val_loss_e``).
    epochs_run: ``[]`` int, epochs trained before the early stop.
  """

  params: dict
  loss_t: Array
  val_loss_e: Array
  best_epoch: Array
  epochs_run: Array


class MLPOracle(nn.Module):
  """``[b, d]`` embeddings -> ``[b, m]`` logits of being correct."""

  num_llms: int
  hidden: int = 100

  @nn.compact
  def __call__(self, x_bd: Array) -> Array:
    x_bd = nn.relu(nn.Dense(self.hidden, name='hidden_0')(x_bd))
    x_bd = nn.relu(nn.Dense(self.hidden, name='hidden_1')(x_bd))
    return nn.Dense(self.num_llms, name='out')(x_bd)


class MatFacOracle(nn.Module):
  """``[b, d]`` -> ``[b, m]`` logits ``(x B) A^T + b``."""

  num_llms: int
  rank: int = 64

  @nn.compact
  def __call__(self, x_bd: Array) -> Array:
    z_br = nn.Dense(self.rank, use_bias=False, name='prompt_proj')(x_bd)
    a_mr = self.param(
        'llm_factors',
        nn.initializers.normal(1.0 / self.rank**0.5),
        (self.num_llms, self.rank),
    )
    bias_m = self.param('llm_bias', nn.initializers.zeros, (self.num_llms,))
    return z_br @ a_mr.T.astype(z_br.dtype) + bias_m


def _net(kind: str, num_llms: int, size: int) -> nn.Module:
  if kind == 'mlp':
    return MLPOracle(num_llms, size)
  if kind == 'matfac':
    return MatFacOracle(num_llms, size)
  raise ValueError(f'kind: expected one of {KINDS}, got {kind!r}.')


def _log_loss(logits_bm: Array, correct_bm: Array, weight_bm: Array) -> Array:
  """Mean sigmoid log-loss over the weighted labels (0 if there are none)."""
  weight_bm = weight_bm.astype(logits_bm.dtype)
  correct_bm = jnp.where(weight_bm > 0, correct_bm, 0.0)
  nll_bm = optax.sigmoid_binary_cross_entropy(logits_bm, correct_bm)
  return jnp.sum(weight_bm * nll_bm) / jnp.maximum(jnp.sum(weight_bm), 1.0)


def oracle_loss(
    params,
    emb_bd: Array,
    error_bm: Array,
    weight_bm: Array,
    *,
    kind: str,
    size: int,
) -> Array:
  """Mean binary log-loss of the predicted correctness on one batch.

  Args:
    params: flax ``params`` of the oracle.
    emb_bd: ``[b, d]`` embeddings.
    error_bm: ``[b, m]`` error labels ``1 - quality``.
    weight_bm: ``[b, m]`` bool, which labels count.
    kind: ``'mlp'`` or ``'matfac'``.
    size: hidden width (mlp) or rank (matfac).

  Returns:
    ``[]`` the loss averaged over the counted labels.
  """
  net = _net(kind, error_bm.shape[1], size)
  logits_bm = net.apply({'params': params}, emb_bd)
  return _log_loss(logits_bm, 1.0 - error_bm, weight_bm)


# Width of the MLP's two hidden layers / rank of MatFac (method.md 2.3).
DEFAULT_SIZE = {'mlp': 100, 'matfac': 64}


def fit_oracle(
    key: Array,
    emb_nd: Array,
    train_idx: Array,
    val_idx: Array,
    error_nm: Array,
    visible_nm: Array,
    llm_mask_m: Array,
    lr=1e-3,
    *,
    kind: str,
    size: int | None = None,
    epochs: int = 30,
    batch_size: int = 64,
    patience: int | None = PATIENCE,
) -> OracleParams:
  """Fits a clairvoyant MLP or MatFac (sees the test LLMs' labels).

  Adam with a best-validation checkpoint carried through the epochs, which
  stop early once ``patience`` epochs in a row did not improve the
  validation loss.

  Args:
    key: PRNG key (initialisation and minibatch order).
    emb_nd: ``[n, d]`` embeddings of all prompts.
    train_idx: ``[n_train]`` int, training prompts.
    val_idx: ``[n_val]`` int, validation prompts (checkpoint selection).
    error_nm: ``[n, m]`` error labels ``1 - quality``.
    visible_nm: ``[n, m]`` bool, labels that may be used.
    llm_mask_m: ``[m]`` bool, the LLMs to fit (normally the test pool).
    lr: Adam learning rate (may be traced).
    kind: ``'mlp'`` or ``'matfac'`` (static).
    size: hidden width (MLP) or rank (MatFac); default ``DEFAULT_SIZE``.
    epochs: passes over the training prompts (static).
    batch_size: minibatch size (static; capped at ``n_train``).
    patience: stop after this many epochs without a lower validation loss
      (static); None runs all ``epochs``.

  Returns:
    :class:`OracleParams` of the best-validation epoch.
  """
  if kind not in DEFAULT_SIZE:
    raise ValueError(f"kind: expected 'mlp' or 'matfac', got {kind!r}.")
  size = DEFAULT_SIZE[kind] if size is None else size
  if emb_nd.ndim != 2 or error_nm.shape[0] != emb_nd.shape[0]:
    raise ValueError(
        f'emb_nd, error_nm: expected [n, d] and [n, m], got {emb_nd.shape} '
        f'and {error_nm.shape}.'
    )
  n_train = train_idx.shape[0]
  if patience is not None and patience < 1:
    raise ValueError(f'patience: expected >= 1 or None, got {patience}.')
  if n_train == 0 or val_idx.shape[0] == 0 or epochs < 1:
    raise ValueError(
        'train_idx, val_idx, epochs: expected at least one of each, got '
        f'{n_train}, {val_idx.shape[0]} and {epochs}.'
    )
  bs = min(batch_size, n_train)
  steps = n_train // bs
  init_key, shuffle_key = jax.random.split(key)
  net = _net(kind, error_nm.shape[1], size)
  params = net.init(init_key, emb_nd[:1])['params']
  opt = optax.adam(lr)
  weight_nm = visible_nm & llm_mask_m[None, :]
  loss_fn = functools.partial(oracle_loss, kind=kind, size=size)
  grad_fn = jax.value_and_grad(loss_fn)
  # Validation is small (O(10^2..10^3) prompts): evaluate it in one batch.
  val_args = (emb_nd[val_idx], error_nm[val_idx], weight_nm[val_idx])

  def step(carry, pos_b):
    params, opt_state = carry
    idx_b = train_idx[pos_b]
    loss, grads = grad_fn(
        params, emb_nd[idx_b], error_nm[idx_b], weight_nm[idx_b]
    )
    updates, opt_state = opt.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  def epoch(carry):
    params, opt_state, best_params, best_loss, best_epoch, e, loss_es, val_e = (
        carry
    )
    perm = jax.random.permutation(epoch_keys[e], n_train)
    pos_sb = perm[: steps * bs].reshape(steps, bs)
    (params, opt_state), loss_s = jax.lax.scan(
        step, (params, opt_state), pos_sb
    )
    val_loss = loss_fn(params, *val_args)
    better = val_loss < best_loss
    best_params = jax.tree.map(
        lambda new, old: jnp.where(better, new, old), params, best_params
    )
    best_loss = jnp.where(better, val_loss, best_loss)
    best_epoch = jnp.where(better, e, best_epoch)
    loss_es = loss_es.at[e].set(loss_s)
    val_e = val_e.at[e].set(val_loss)
    return (
        params, opt_state, best_params, best_loss, best_epoch, e + 1,
        loss_es, val_e,
    )  # fmt: skip

  def running(carry):
    e, best_epoch = carry[5], carry[4]
    return (e < epochs) & (e - best_epoch <= wait)

  dtype = jax.eval_shape(loss_fn, params, *val_args).dtype
  zero = jnp.zeros((), jnp.int32)
  nan = jnp.asarray(jnp.nan, dtype)
  carry = (
      params, opt.init(params), params, jnp.asarray(jnp.inf, dtype), zero,
      zero, jnp.full((epochs, steps), nan), jnp.full((epochs,), nan),
  )  # fmt: skip
  epoch_keys = jax.random.split(shuffle_key, epochs)
  wait = epochs if patience is None else patience
  carry = jax.lax.while_loop(running, epoch, carry)
  return OracleParams(
      params=carry[2],
      loss_t=carry[6].reshape(-1),
      val_loss_e=carry[7],
      best_epoch=carry[4],
      epochs_run=carry[5],
  )


def oracle_gamma(params: OracleParams, emb_qd: Array, *, kind: str) -> Array:
  """Estimated error ``gamma = 1 - P[correct]`` of every LLM.

  The hidden width / rank and the number of LLMs are read off the parameter
  shapes.

  Args:
    params: a fitted :class:`OracleParams`.
    emb_qd: ``[q, d]`` query embeddings.
    kind: ``'mlp'`` or ``'matfac'``, as fitted.

  Returns:
    ``gamma_qm``: ``[q, m]`` in (0, 1).
  """
  p = params.params
  if kind == 'mlp':
    size, num_llms = p['hidden_0']['kernel'].shape[1], p['out']['bias'].shape[0]
  elif kind == 'matfac':
    num_llms, size = p['llm_factors'].shape
  else:
    raise ValueError(f'kind: expected one of {KINDS}, got {kind!r}.')
  logits_qm = _net(kind, num_llms, size).apply({'params': p}, emb_qd)
  # sigmoid(-z) = 1 - sigmoid(z) without cancellation.
  return jax.nn.sigmoid(-logits_qm)
