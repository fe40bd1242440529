"""UniRoute (LearnedMap): a trained soft cluster map (method.md 2.2).

The prompt side of UniRoute is a map into the K-simplex,
``Phi(x; theta) = softmax(f_theta(phi(x)))``. With the per-cluster error
table ``psi_km`` of the training LLMs held fixed, the estimated error of LLM
``h`` on prompt ``x`` is
``gamma(x, h) = Phi(x; theta)^T psi[:, h]``, and ``theta`` minimises the binary
log-loss of ``gamma`` against the training LLMs' labels on the training
prompts. At test time the same ``Phi`` is combined with the ``psi`` of unseen
LLMs, computed on the validation set.

Two architectures ``f_theta``:

* ``arch='linear'``: one ``Dense(K)`` layer (the paper's main text);
* ``arch='mlp'``: ``BatchNorm -> [Dense(hidden), BatchNorm, ReLU] x 2 ->
  Dense(K)`` (the network behind the paper's numbers). ``[project choice]``
  the BatchNorm after each hidden Dense layer cancels any constant shift
  before it, so the hidden Dense layers and the input BatchNorm carry no
  bias: its gradient would be exactly zero, and Adam would turn the float
  noise in it into +-lr steps (the function class is unchanged).

``psi_km`` is an input: the caller computes it (``[project choice]``, see
method.md 2.2) from the **validation** labels by default, or from the
training labels as an option. This module does not care which.

Clusters are padded to ``k_max``: ``cluster_mask_k`` marks the real ones. The
softmax runs over real clusters only, so padded clusters get probability
exactly 0 (and an all-padded row gives zeros, never NaN). The last layer's
kernel is initialised column by column from ``fold_in(key, k)``, so the real
clusters start from the same weights whatever ``k_max`` is; together with
zero gradients into padded logits, a padded fit equals the unpadded one.

Training is a pure function of arrays and a key: a ``lax.scan`` over epochs,
each a ``lax.scan`` over Adam steps on minibatches of a fresh permutation of
``train_idx`` (the remainder ``n_train % batch_size`` is dropped each epoch;
the permutation changes every epoch, so no prompt is left out for good). The
step count is static, the learning rate may be traced, so a whole fit vmaps
over trials, learning rates and (padded) K.

``[project choice]`` BatchNorm momentum defaults to 0.9 rather than Keras'
0.99: a 5-epoch fit on a few thousand prompts makes only ~100-300 steps, too
few for a 0.99 running average to forget its (0, 1) initialisation.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from unirouter_jax.core import kmeans

Array = jax.Array

ARCHS = ('linear', 'mlp')
# The paper's Adam learning rate for the cluster map (method.md 2.2).
LEARNING_RATE = 5e-3


@struct.dataclass
class LearnedMapParams:
  """A fitted cluster map.

  Attributes:
    variables: flax variables, ``{'params': ..., 'batch_stats': ...}``
      (``batch_stats`` is empty for ``arch='linear'``).
    loss_t: ``[t]`` training loss of each Adam step (before the step).
  """

  variables: dict
  loss_t: Array


def _column_init(key, shape, dtype=jnp.float32):
  """LeCun-normal ``[d, k]`` kernel whose column k depends only on ``(key, k)``.

  LeCun scaling depends on fan-in only, so the columns of the real clusters
  are the same for any number of padded columns.
  """
  fan_in, num_cols = shape
  base = nn.initializers.lecun_normal()

  def one_col(j):
    return base(jax.random.fold_in(key, j), (fan_in, 1), dtype)[:, 0]

  return jax.vmap(one_col, out_axes=1)(jnp.arange(num_cols))


class ClusterNet(nn.Module):
  """``f_theta``: embeddings ``[b, d]`` -> cluster logits ``[b, num_clusters]``.

  Attributes:
    num_clusters: ``k_max``, the padded number of clusters.
    arch: ``'linear'`` or ``'mlp'``.
    hidden: width of the two hidden layers of the MLP.
    bn_momentum: momentum of the BatchNorm running averages.
  """

  num_clusters: int
  arch: str = 'mlp'
  hidden: int = 128
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x_bd: Array, *, train: bool) -> Array:
    if self.arch == 'mlp':
      bn = functools.partial(
          nn.BatchNorm,
          use_running_average=not train,
          momentum=self.bn_momentum,
      )
      # No shifts before a BatchNorm (see the module docstring): the input
      # BatchNorm only scales, the hidden Dense layers have no bias.
      x_bd = bn(use_bias=False)(x_bd)
      for _ in range(2):
        x_bd = nn.Dense(self.hidden, use_bias=False)(x_bd)
        x_bd = nn.relu(bn()(x_bd))
    elif self.arch != 'linear':
      raise ValueError(f'arch: expected one of {ARCHS}, got {self.arch!r}.')
    return nn.Dense(self.num_clusters, kernel_init=_column_init)(x_bd)


def learned_map_loss(
    params,
    batch_stats,
    emb_bd: Array,
    error_bm: Array,
    weight_bm: Array,
    psi_km: Array,
    cluster_mask_k: Array,
    *,
    arch: str,
    hidden: int = 128,
    eps: float = 1e-4,
    train: bool = True,
    bn_momentum: float = 0.9,
) -> tuple[Array, dict]:
  """Mean binary log-loss of ``gamma = Phi(x)^T psi`` on one minibatch.

  Args:
    params: flax ``params`` collection of :class:`ClusterNet`.
    batch_stats: flax ``batch_stats`` collection (``{}`` for linear).
    emb_bd: ``[b, d]`` prompt embeddings.
    error_bm: ``[b, m]`` error labels ``1 - quality`` in [0, 1].
    weight_bm: ``[b, m]`` bool (or 0/1), which labels count (visible labels
      of the training LLMs).
    psi_km: ``[k_max, m]`` per-cluster error of each LLM (padded rows are
      ignored, even if NaN).
    cluster_mask_k: ``[k_max]`` bool, True for the real clusters.
    arch: ``'linear'`` or ``'mlp'``.
    hidden: MLP width.
    eps: ``gamma`` is clipped to ``[eps, 1 - eps]``.
    train: BatchNorm uses (and updates) batch statistics when True, the
      running averages when False.
    bn_momentum: BatchNorm momentum.

  Returns:
    ``(loss, new_batch_stats)``: the loss averaged over the counted labels
    (0 if none) and the updated running averages (unchanged if not
    ``train``).
  """
  net = ClusterNet(psi_km.shape[0], arch, hidden, bn_momentum)
  variables = {'params': params, 'batch_stats': batch_stats}
  if train:
    logits_bk, updates = net.apply(
        variables, emb_bd, train=True, mutable=['batch_stats']
    )
    # BatchNorm keeps float32 statistics; cast back so the scan carry keeps
    # its dtype when inputs are float64 (JAX_ENABLE_X64).
    new_stats = jax.tree.map(
        lambda new, old: new.astype(old.dtype),
        dict(updates.get('batch_stats', {})),
        batch_stats,
    )
  else:
    logits_bk = net.apply(variables, emb_bd, train=False)
    new_stats = batch_stats
  phi_bk = kmeans.masked_softmax(logits_bk, cluster_mask_k)
  psi_km = jnp.where(cluster_mask_k[:, None], psi_km, 0.0)
  gamma_bm = jnp.clip(phi_bk @ psi_km, eps, 1.0 - eps)
  weight_bm = weight_bm.astype(gamma_bm.dtype)
  error_bm = jnp.where(weight_bm > 0, error_bm, 0.0)
  nll_bm = -(
      error_bm * jnp.log(gamma_bm) + (1.0 - error_bm) * jnp.log1p(-gamma_bm)
  )
  loss = jnp.sum(weight_bm * nll_bm) / jnp.maximum(jnp.sum(weight_bm), 1.0)
  return loss, new_stats


def _epoch_batches(key, n_train: int, batch_size: int) -> Array:
  """``[steps_per_epoch, batch]`` positions into ``train_idx`` for one epoch."""
  bs = min(batch_size, n_train)
  steps = n_train // bs
  perm = jax.random.permutation(key, n_train)
  return perm[: steps * bs].reshape(steps, bs)


def fit_learned_map(
    key: Array,
    emb_nd: Array,
    train_idx: Array,
    error_nm: Array,
    visible_nm: Array,
    llm_mask_m: Array,
    psi_km: Array,
    cluster_mask_k: Array,
    lr,
    *,
    arch: str = 'mlp',
    epochs: int = 5,
    batch_size: int = 64,
    hidden: int = 128,
    eps: float = 1e-4,
    bn_momentum: float = 0.9,
) -> LearnedMapParams:
  """Fits ``Phi(x; theta)`` with Adam (method.md 2.2).

  Args:
    key: PRNG key (initialisation and minibatch order).
    emb_nd: ``[n, d]`` embeddings of all prompts.
    train_idx: ``[n_train]`` int, the training prompts (rows of ``emb_nd``).
    error_nm: ``[n, m]`` error labels ``1 - quality``.
    visible_nm: ``[n, m]`` bool, labels that may be used.
    llm_mask_m: ``[m]`` bool, the training LLMs (others are ignored).
    psi_km: ``[k_max, m]`` per-cluster error of each LLM, from the validation
      set by default or the training set (the caller's choice).
    cluster_mask_k: ``[k_max]`` bool, True for the real clusters.
    lr: Adam learning rate (may be traced, e.g. vmapped).
    arch: ``'linear'`` or ``'mlp'``.
    epochs: passes over the training prompts (static).
    batch_size: minibatch size (static; capped at ``n_train``).
    hidden: MLP width (static).
    eps: clipping of ``gamma``.
    bn_momentum: BatchNorm momentum (static).

  Returns:
    :class:`LearnedMapParams` with ``loss_t`` of length
    ``epochs * (n_train // batch_size)``.
  """
  if arch not in ARCHS:
    raise ValueError(f'arch: expected one of {ARCHS}, got {arch!r}.')
  if emb_nd.ndim != 2 or error_nm.shape[0] != emb_nd.shape[0]:
    raise ValueError(
        f'emb_nd, error_nm: expected [n, d] and [n, m], got {emb_nd.shape} '
        f'and {error_nm.shape}.'
    )
  if psi_km.shape != (cluster_mask_k.shape[0], error_nm.shape[1]):
    raise ValueError(
        'psi_km: expected [k_max, m] = '
        f'{(cluster_mask_k.shape[0], error_nm.shape[1])}, got {psi_km.shape}.'
    )
  n_train = train_idx.shape[0]
  if n_train == 0 or epochs < 1:
    raise ValueError(
        f'train_idx, epochs: expected >= 1 prompt and epoch, got {n_train} '
        f'and {epochs}.'
    )
  init_key, shuffle_key = jax.random.split(key)
  net = ClusterNet(psi_km.shape[0], arch, hidden, bn_momentum)
  variables = net.init(init_key, emb_nd[:1], train=False)
  params = variables['params']
  batch_stats = dict(variables.get('batch_stats', {}))
  opt = optax.adam(lr)
  weight_nm = visible_nm & llm_mask_m[None, :]
  loss_fn = functools.partial(
      learned_map_loss,
      arch=arch,
      hidden=hidden,
      eps=eps,
      train=True,
      bn_momentum=bn_momentum,
  )
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def step(carry, pos_b):
    params, batch_stats, opt_state = carry
    idx_b = train_idx[pos_b]
    (loss, batch_stats), grads = grad_fn(
        params,
        batch_stats,
        emb_nd[idx_b],
        error_nm[idx_b],
        weight_nm[idx_b],
        psi_km,
        cluster_mask_k,
    )
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return (params, batch_stats, opt_state), loss

  def epoch(carry, epoch_key):
    pos_sb = _epoch_batches(epoch_key, n_train, batch_size)
    return jax.lax.scan(step, carry, pos_sb)

  carry = (params, batch_stats, opt.init(params))
  (params, batch_stats, _), loss_et = jax.lax.scan(
      epoch, carry, jax.random.split(shuffle_key, epochs)
  )
  return LearnedMapParams(
      variables={'params': params, 'batch_stats': batch_stats},
      loss_t=loss_et.reshape(-1),
  )


def cluster_map(
    params: LearnedMapParams,
    emb_qd: Array,
    cluster_mask_k: Array,
    *,
    arch: str,
    hidden: int = 128,
) -> Array:
  """Soft cluster assignment ``Phi(x)`` in eval mode.

  BatchNorm uses the running averages, so each row's output is independent
  of the other rows of ``emb_qd``.

  Args:
    params: a fitted :class:`LearnedMapParams`.
    emb_qd: ``[q, d]`` query embeddings.
    cluster_mask_k: ``[k_max]`` bool, True for the real clusters.
    arch: the architecture ``params`` was fitted with.
    hidden: the MLP width ``params`` was fitted with.

  Returns:
    ``phi_qk``: ``[q, k_max]`` probabilities, 0 on padded clusters.
  """
  net = ClusterNet(cluster_mask_k.shape[0], arch, hidden)
  variables = {
      'params': params.variables['params'],
      'batch_stats': params.variables.get('batch_stats', {}),
  }
  logits_qk = net.apply(variables, emb_qd, train=False)
  return kmeans.masked_softmax(logits_qk, cluster_mask_k)
