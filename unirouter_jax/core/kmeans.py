"""Weighted k-means in JAX: k-means++, Lloyd, soft k-means, assignment.

The prompt side of UniRoute (K-means), method.md section 2.1: cluster the
training prompts' embeddings; ``Phi(x)`` is the one-hot of the nearest
centroid.

Everything is padded to ``k_max`` clusters with a boolean ``cluster_mask_k``,
so one compiled function serves every K (``k`` may be a traced int). Points
are selected by a weight vector ``weight_n`` rather than by gathering rows,
so a trial's training prompts are a 0/1 mask over the full embedding table
and no copy of ``emb_nd`` is made per trial. Padded clusters have zero
centroids and are masked to ``+inf`` distance, so no point is ever assigned
to one.

Squared distances use ``||x||^2 - 2 x c^T + ||c||^2`` with the matrix product
at ``Precision.HIGHEST`` (TF32 matmuls on GPUs would otherwise perturb
assignments), clipped at zero.

Speed (benchmarks/sweep_bench.py): a Lloyd step costs one ``[n, d] x [d, k]``
product for the distances; the centre update is a segment sum (``n * d``
adds) when the step runs unbatched, and a one-hot matrix product when it is
vmapped (a batched scatter would materialise ``[batch, n, d]`` updates),
chosen by a ``custom_vmap`` rule. Restarts run one after another
(``lax.map``), so each stops at its own convergence, as scikit-learn's do;
an outer ``vmap`` over trials or K still batches them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from unirouter_jax.core.structs import Clustering

Array = jax.Array


def _sqdist(emb_nd: Array, centroids_kd: Array) -> Array:
  """``[n, k]`` squared Euclidean distances, clipped at zero."""
  x2_n1 = jnp.sum(emb_nd * emb_nd, axis=-1, keepdims=True)
  c2_1k = jnp.sum(centroids_kd * centroids_kd, axis=-1)[None, :]
  xc_nk = jnp.matmul(emb_nd, centroids_kd.T, precision=lax.Precision.HIGHEST)
  return jnp.maximum(x2_n1 - 2.0 * xc_nk + c2_1k, 0.0)


def _masked_sqdist(emb_nd, centroids_kd, cluster_mask_k) -> Array:
  """``[n, k]`` squared distances, ``+inf`` on padded clusters."""
  d_nk = _sqdist(emb_nd, centroids_kd)
  return jnp.where(cluster_mask_k[None, :], d_nk, jnp.inf)


def masked_softmax(logits_nk: Array, mask_k: Array) -> Array:
  """``[n, k]`` softmax over the masked-in entries; zeros elsewhere.

  Never NaN: a row with no real entry is all zeros, and masked entries get
  no gradient. The one masked softmax of the package (soft k-means,
  LearnedMap).
  """
  neg = jnp.finfo(logits_nk.dtype).min
  logits_nk = jnp.where(mask_k, logits_nk, neg)
  return jnp.where(mask_k, jax.nn.softmax(logits_nk, axis=-1), 0.0)


def _tolerance(emb_nd: Array, weight_n: Array, tol) -> Array:
  """scikit-learn's rule: ``tol`` times the mean per-feature variance."""
  w_n1 = weight_n[:, None].astype(emb_nd.dtype)
  total = jnp.maximum(jnp.sum(w_n1), jnp.finfo(emb_nd.dtype).tiny)
  mean_1d = jnp.sum(w_n1 * emb_nd, axis=0, keepdims=True) / total
  var_d = jnp.sum(w_n1 * (emb_nd - mean_1d) ** 2, axis=0) / total
  return tol * jnp.mean(var_d)


def _inertia(emb_nd, weight_n, centroids_kd, cluster_mask_k) -> Array:
  d_nk = _masked_sqdist(emb_nd, centroids_kd, cluster_mask_k)
  dmin_n = jnp.where(weight_n > 0, jnp.min(d_nk, axis=-1), 0.0)
  return jnp.sum(weight_n * dmin_n)


@functools.partial(jax.jit, static_argnames=('k_max',))
def kmeans_plusplus(key, emb_nd, weight_n, k, *, k_max: int) -> Array:
  """k-means++ seeding over the points of positive weight.

  The first centre is drawn with probability proportional to ``weight_n``;
  each next one proportional to ``weight_n`` times the squared distance to
  the nearest centre so far (plain, not greedy, k-means++).

  Args:
    key: PRNG key.
    emb_nd: ``[n, d]`` embeddings.
    weight_n: ``[n]`` non-negative weights (0/1 masks select points).
    k: number of centres, Python or traced int, ``1 <= k <= k_max``.
    k_max: static number of rows of the result.

  Returns:
    ``[k_max, d]`` centres; rows ``>= k`` are zero.
  """
  weight_n = weight_n.astype(emb_nd.dtype)
  n, d = emb_nd.shape

  def body(i, carry):
    centroids_kd, dmin_n = carry
    p_n = jnp.where(i == 0, weight_n, weight_n * dmin_n)
    # All mass on already chosen points (duplicates): fall back to weights.
    p_n = jnp.where(jnp.sum(p_n) > 0, p_n, weight_n)
    logits_n = jnp.where(
        p_n > 0, jnp.log(jnp.where(p_n > 0, p_n, 1.0)), -jnp.inf
    )
    logits_n = jnp.where(jnp.any(p_n > 0), logits_n, 0.0)
    idx = jax.random.categorical(jax.random.fold_in(key, i), logits_n)
    c_d = lax.dynamic_index_in_dim(emb_nd, idx, keepdims=False)
    active = i < k
    centroids_kd = centroids_kd.at[i].set(jnp.where(active, c_d, 0.0))
    d_n = _sqdist(emb_nd, c_d[None, :])[:, 0]
    new_dmin_n = jnp.where(i == 0, d_n, jnp.minimum(dmin_n, d_n))
    return centroids_kd, jnp.where(active, new_dmin_n, dmin_n)

  init = (jnp.zeros((k_max, d), emb_nd.dtype), jnp.zeros((n,), emb_nd.dtype))
  centroids_kd, _ = lax.fori_loop(0, k_max, body, init)
  return centroids_kd


def _iterate(update, emb_nd, weight_n, init_kd, cluster_mask_k, max_iter, tol):
  """Runs ``update`` until the total squared centre shift <= tolerance."""
  init_kd = jnp.where(cluster_mask_k[:, None], init_kd, 0.0).astype(
      emb_nd.dtype
  )
  tol_abs = _tolerance(emb_nd, weight_n, tol)

  def cond(carry):
    _, shift, it = carry
    return (it < max_iter) & (shift > tol_abs)

  def body(carry):
    c_kd, _, it = carry
    new_kd = update(c_kd)
    return new_kd, jnp.sum((new_kd - c_kd) ** 2), it + 1

  init = (init_kd, jnp.array(jnp.inf, emb_nd.dtype), jnp.array(0, jnp.int32))
  c_kd, _, n_iter = lax.while_loop(cond, body, init)
  return Clustering(
      centroids_kd=c_kd,
      cluster_mask_k=cluster_mask_k,
      inertia=_inertia(emb_nd, weight_n, c_kd, cluster_mask_k),
      n_iter=n_iter,
  )


def _weighted_means(resp_nk, emb_nd, old_kd):
  """Responsibility-weighted centre update; an empty cluster keeps its old
  centre."""
  mass_k = jnp.sum(resp_nk, axis=0)
  sums_kd = jnp.matmul(resp_nk.T, emb_nd, precision=lax.Precision.HIGHEST)
  return _means_from_sums(sums_kd, mass_k, old_kd)


def _means_from_sums(sums_kd, mass_k, old_kd):
  safe_k1 = jnp.where(mass_k > 0, mass_k, 1.0)[:, None]
  return jnp.where(mass_k[:, None] > 0, sums_kd / safe_k1, old_kd)


def _onehot_sums(emb_nd, w_n, a_n, k_max):
  """``([k, d], [k])`` weighted sums and masses as one-hot matrix products."""
  onehot_nk = jax.nn.one_hot(a_n, k_max, dtype=emb_nd.dtype) * w_n[:, None]
  sums_kd = jnp.matmul(onehot_nk.T, emb_nd, precision=lax.Precision.HIGHEST)
  return sums_kd, jnp.sum(onehot_nk, axis=0)


def _cluster_sums(emb_nd, w_n, a_n, k_max):
  """``([k_max, d], [k_max])`` weighted sums and masses of hard clusters.

  Unbatched: a segment sum over the points of positive weight (``n * d``
  adds; zero-weight points go to a dropped extra segment). Under ``vmap``: one-hot matrix products (see the
  module docstring).
  """

  @jax.custom_batching.custom_vmap
  def sums(emb_nd, w_n, a_n):
    seg_n = jnp.where(w_n > 0, a_n, k_max)
    sums_kd = jax.ops.segment_sum(
        emb_nd * w_n[:, None], seg_n, num_segments=k_max + 1
    )
    mass_k = jax.ops.segment_sum(w_n, seg_n, num_segments=k_max + 1)
    return sums_kd[:k_max], mass_k[:k_max]

  @sums.def_vmap
  def _(axis_size, in_batched, emb_nd, w_n, a_n):
    del axis_size
    axes = tuple(0 if b else None for b in in_batched)
    fn = functools.partial(_onehot_sums, k_max=k_max)
    return jax.vmap(fn, in_axes=axes)(emb_nd, w_n, a_n), (True, True)

  return sums(emb_nd, w_n, a_n)


@jax.jit
def lloyd(
    emb_nd, weight_n, init_kd, cluster_mask_k, *, max_iter=100, tol=1e-4
) -> Clustering:
  """Weighted Lloyd iterations from ``init_kd`` (``lax.while_loop``).

  Stops when the total squared centre shift is ``<= tol`` times the mean
  per-feature variance of the weighted data (scikit-learn's rule), or after
  ``max_iter`` iterations. ``max_iter`` and ``tol`` may be traced.

  Args:
    emb_nd: ``[n, d]`` embeddings.
    weight_n: ``[n]`` non-negative point weights.
    init_kd: ``[k_max, d]`` initial centres (padded rows are ignored).
    cluster_mask_k: ``[k_max]`` True for the real clusters.
    max_iter: iteration cap.
    tol: relative tolerance.

  Returns:
    ``Clustering`` with the final centres and their weighted inertia.
  """
  w_n = weight_n.astype(emb_nd.dtype)
  k_max = init_kd.shape[0]

  def update(c_kd):
    d_nk = _masked_sqdist(emb_nd, c_kd, cluster_mask_k)
    a_n = jnp.argmin(d_nk, axis=-1)
    sums_kd, mass_k = _cluster_sums(emb_nd, w_n, a_n, k_max)
    return _means_from_sums(sums_kd, mass_k, c_kd)

  return _iterate(
      update, emb_nd, weight_n, init_kd, cluster_mask_k, max_iter, tol
  )


@jax.jit
def soft_kmeans(
    emb_nd, weight_n, init_kd, cluster_mask_k, beta, *, max_iter=100, tol=1e-4
) -> Clustering:
  """Soft k-means: responsibilities ``softmax(-beta * sqdist)``.

  Same stopping rule as ``lloyd``; as ``beta -> inf`` the responsibilities
  become one-hot and this is Lloyd. ``beta`` must be finite and > 0 (it may be
  traced). ``inertia`` is the hard (nearest-centre) inertia of the result, so
  it is comparable with ``lloyd``'s.
  """
  w_n1 = weight_n.astype(emb_nd.dtype)[:, None]

  def update(c_kd):
    d_nk = _sqdist(emb_nd, c_kd)
    resp_nk = masked_softmax(-beta * d_nk, cluster_mask_k)
    return _weighted_means(w_n1 * resp_nk, emb_nd, c_kd)

  return _iterate(
      update, emb_nd, weight_n, init_kd, cluster_mask_k, max_iter, tol
  )


def _check_host_inputs(emb_nd, weight_n, k, k_max, n_init) -> None:
  """Raises ValueError on inputs that are concrete and wrong."""
  if not isinstance(k_max, (int, np.integer)) or k_max < 1:
    raise ValueError(f'k_max: expected a positive Python int, got {k_max!r}.')
  if not isinstance(n_init, (int, np.integer)) or n_init < 1:
    raise ValueError(f'n_init: expected a positive Python int, got {n_init!r}.')
  if np.ndim(emb_nd) != 2:
    raise ValueError(f'emb_nd: expected [n, d], got shape {np.shape(emb_nd)}.')
  if np.shape(weight_n) != np.shape(emb_nd)[:1]:
    raise ValueError(
        f'weight_n: expected shape {np.shape(emb_nd)[:1]}, got '
        f'{np.shape(weight_n)}.'
    )
  if isinstance(k, (int, np.integer)):
    if not 1 <= k <= k_max:
      raise ValueError(f'k: expected 1 <= k <= k_max={k_max}, got {k}.')
    try:
      w = np.asarray(weight_n)
    except (
        jax.errors.TracerArrayConversionError,
        jax.errors.ConcretizationTypeError,
    ):
      return
    if (w < 0).any():
      raise ValueError('weight_n: expected non-negative weights.')
    if int((w > 0).sum()) < k:
      raise ValueError(
          'k: expected at most the number of weighted points '
          f'({int((w > 0).sum())}), got {k}.'
      )


def kmeans(
    key, emb_nd, weight_n, k, *, k_max: int, n_init=3, max_iter=100, tol=1e-4
) -> Clustering:
  """k-means++ then Lloyd, ``n_init`` restarts (vmapped), best inertia kept.

  Args:
    key: PRNG key; split into ``n_init`` restart keys.
    emb_nd: ``[n, d]`` embeddings.
    weight_n: ``[n]`` non-negative weights (0/1 selects the points).
    k: number of clusters, Python or traced int, ``1 <= k <= k_max``.
    k_max: static padded number of clusters.
    n_init: static number of restarts.
    max_iter: Lloyd iteration cap.
    tol: relative tolerance of Lloyd.

  Returns:
    ``Clustering`` padded to ``k_max``.

  Raises:
    ValueError: naming the argument, for concrete bad inputs (e.g. a Python
      int ``k`` above the number of weighted points).
  """
  _check_host_inputs(emb_nd, weight_n, k, k_max, n_init)
  return _kmeans(key, emb_nd, weight_n, k, k_max, n_init, max_iter, tol)


@functools.partial(jax.jit, static_argnames=('k_max', 'n_init'))
def _kmeans(key, emb_nd, weight_n, k, k_max, n_init, max_iter, tol):
  weight_n = jnp.asarray(weight_n, emb_nd.dtype)
  cluster_mask_k = jnp.arange(k_max) < k

  def one(key_i):
    init_kd = kmeans_plusplus(key_i, emb_nd, weight_n, k, k_max=k_max)
    return lloyd(
        emb_nd, weight_n, init_kd, cluster_mask_k, max_iter=max_iter, tol=tol
    )

  # Sequential restarts: each stops at its own convergence (see the module
  # docstring); under an outer vmap the map is batched anyway.
  runs = lax.map(one, jax.random.split(key, n_init))
  best = jnp.argmin(runs.inertia)
  return jax.tree.map(functools.partial(_take, best), runs)


def _take(i, x):
  return lax.dynamic_index_in_dim(x, i, keepdims=False)


@jax.jit
def assign(emb_qd, clustering: Clustering) -> Array:
  """``[q]`` int32 index of the nearest real centroid."""
  d_qk = _masked_sqdist(
      emb_qd, clustering.centroids_kd, clustering.cluster_mask_k
  )
  return jnp.argmin(d_qk, axis=-1).astype(jnp.int32)


@jax.jit
def one_hot_assign(emb_qd, clustering: Clustering) -> Array:
  """``[q, k_max]`` one-hot of ``assign`` (the K-means ``Phi``)."""
  k_max = clustering.centroids_kd.shape[0]
  return jax.nn.one_hot(
      assign(emb_qd, clustering), k_max, dtype=clustering.centroids_kd.dtype
  )


@jax.jit
def responsibilities(emb_qd, clustering: Clustering, beta) -> Array:
  """``[q, k_max]`` ``softmax(-beta * sqdist)`` over the real clusters.

  Padded clusters get zero; rows sum to 1 (never NaN).
  """
  d_qk = _sqdist(emb_qd, clustering.centroids_kd)
  return masked_softmax(-beta * d_qk, clustering.cluster_mask_k)
