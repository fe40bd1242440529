"""Fitting a deployable router from arrays: clusters, cluster map, tables.

:func:`fit_router` runs K-means on the training prompts, builds the cluster
map (:mod:`unirouter_jax.deploy.cluster_map`: ``'kmeans'``, ``'soft'`` at a
given ``beta``, or a ``'learned'`` map fitted on the labels of the fitting
LLMs on the training prompts) and the per-cluster tables from the probe
labels. :func:`from_clustering` assembles a router from a fitted clustering
and map. Both are re-exported by :mod:`unirouter_jax.deploy.router`.

The map is fitted on the LLMs ``map_llms`` (default: all). An LLM outside
them only adds its ``psi`` column, so a router fitted with it equals the one
fitted without it to which it is then added (``router.add_llm``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from unirouter_jax.core import kmeans
from unirouter_jax.core.structs import Clustering
from unirouter_jax.deploy import cluster_map as maps
from unirouter_jax.deploy import state as router_state

Router = router_state.Router


def fit_router(
    key,
    emb_nd,
    quality_nm,
    label_mask_nm,
    cost_m,
    llm_names: Sequence[str],
    *,
    train_idx,
    probe_idx,
    k: int,
    probe_ids: Sequence[str] | None = None,
    probe_texts: Sequence[str] | None = None,
    encoder_id: str = '',
    encoder_hash: str = '',
    shrinkage: float = 0.0,
    n_init: int = 3,
    max_iter: int = 100,
    cluster_map: str = 'kmeans',
    beta: float = maps.DEFAULT_BETA,
    map_llms: Sequence[str] | None = None,
    arch: str = 'mlp',
    epochs: int = maps.EPOCHS,
) -> Router:
  """Fits a router: K-means on ``train_idx``, ``psi`` on ``probe_idx``.

  Args:
    key: PRNG key of K-means (and, folded in, of the learned map).
    emb_nd: ``[n, d]`` prompt embeddings.
    quality_nm: ``[n, m]`` labels in [0, 1] (the probe rows give psi; the
      training rows of ``map_llms`` fit a learned map).
    label_mask_nm: ``[n, m]`` True where labelled.
    cost_m: ``[m]`` cost per query.
    llm_names: ``m`` unique names.
    train_idx: ``[n_train]`` prompts to cluster.
    probe_idx: ``[p]`` the probe set (every LLM's labels on it give psi).
    k: number of clusters (``1 <= k <= n_train``).
    probe_ids: ``p`` ids of the probe prompts (default: their indices).
    probe_texts: ``p`` texts of the probe prompts (default: empty).
    encoder_id: identifier of the encoder that produced ``emb_nd``.
    encoder_hash: hash of its weights.
    shrinkage: pseudo-count of the shrinkage estimator (0 = paper).
    n_init: K-means restarts.
    max_iter: Lloyd iterations.
    cluster_map: ``'kmeans'``, ``'soft'`` or ``'learned'``.
    beta: inverse temperature of ``'soft'``.
    map_llms: the LLMs whose labels fit a ``'learned'`` map (default: all).
    arch: ``'mlp'`` or ``'linear'`` (``'learned'``).
    epochs: training epochs of a ``'learned'`` map (paper: 5).
  """
  kind = maps.check_kind(cluster_map)
  emb = np.asarray(emb_nd, np.float32)
  q = np.asarray(quality_nm, np.float32)
  mask = np.asarray(label_mask_nm, bool)
  if emb.ndim != 2 or q.ndim != 2 or q.shape[0] != emb.shape[0]:
    raise ValueError(
        f'emb_nd/quality_nm: expected [n, d] and [n, m], got {emb.shape} and '
        f'{q.shape}.'
    )
  if mask.shape != q.shape:
    raise ValueError(f'label_mask_nm: expected {q.shape}, got {mask.shape}.')
  names = router_state.check_names(llm_names, 'llm_names')
  router_state.check_some_llms(q.shape[1], 'quality_nm')
  if len(names) != q.shape[1]:
    raise ValueError(
        f'llm_names: expected {q.shape[1]} names, got {len(names)}.'
    )
  cost = router_state.check_cost(cost_m, 'cost_m')
  if cost.shape != (q.shape[1],):
    raise ValueError(
        f'cost_m: expected shape ({q.shape[1]},), got {cost.shape}.'
    )
  train_idx = np.asarray(train_idx, np.int64)
  probe_idx = np.asarray(probe_idx, np.int64)
  if probe_idx.size == 0 or train_idx.size == 0:
    raise ValueError('train_idx/probe_idx: expected non-empty index arrays.')
  if not isinstance(k, (int, np.integer)) or not 1 <= k <= train_idx.size:
    raise ValueError(f'k: expected an int in [1, {train_idx.size}], got {k!r}.')
  pq = q[probe_idx]
  pmask = mask[probe_idx]
  if (
      not np.isfinite(pq[pmask]).all()
      or (pq[pmask] < 0).any()
      or (pq[pmask] > 1).any()
  ):
    raise ValueError('quality_nm: expected probe labels in [0, 1].')
  ids = tuple(str(i) for i in (probe_idx if probe_ids is None else probe_ids))
  texts = (
      tuple('' for _ in ids)
      if probe_texts is None
      else tuple(str(t) for t in probe_texts)
  )
  if len(ids) != probe_idx.size or len(texts) != probe_idx.size:
    raise ValueError(
        f'probe_ids/probe_texts: expected {probe_idx.size} entries, got '
        f'{len(ids)} and {len(texts)}.'
    )
  if len(set(ids)) != len(ids):
    raise ValueError('probe_ids: expected unique ids.')
  cols = _map_columns(names, map_llms) if kind == 'learned' else None
  if kind == 'soft':
    maps.check_beta(beta)
  if kind == 'learned':
    maps.check_learned(arch, epochs)
  weight_n = np.zeros((emb.shape[0],), np.float32)
  weight_n[train_idx] = 1.0
  clustering = _kmeans_jit(
      key,
      jnp.asarray(emb),
      jnp.asarray(weight_n),
      k,
      k_max=int(k),
      n_init=n_init,
      max_iter=max_iter,
  )
  cmap = maps.kmeans_map()
  if kind == 'soft':
    cmap = maps.soft_map(beta)
  elif kind == 'learned':
    tq, tmask = q[train_idx][:, cols], mask[train_idx][:, cols]
    t = tq[tmask]
    if not np.isfinite(t).all() or (t < 0).any() or (t > 1).any():
      raise ValueError('quality_nm: expected training labels in [0, 1].')
    cmap = maps.fit_learned(
        jax.random.fold_in(key, 1),
        clustering,
        emb,
        train_idx,
        np.where(mask, 1.0 - q, 0.0)[:, cols],
        mask[:, cols],
        emb[probe_idx],
        np.where(pmask, 1.0 - pq, 0.0)[:, cols],
        pmask[:, cols],
        arch=arch,
        epochs=epochs,
    )
  return from_clustering(
      clustering,
      emb[probe_idx],
      np.where(pmask, pq, 0.0),
      pmask,
      cost,
      names,
      probe_ids=ids,
      probe_texts=texts,
      encoder_id=encoder_id,
      encoder_hash=encoder_hash,
      shrinkage=shrinkage,
      cluster_map=cmap,
  )


def _map_columns(names: tuple[str, ...], map_llms) -> np.ndarray:
  """Column indices of the LLMs that fit the learned map (default: all)."""
  if map_llms is None:
    return np.arange(len(names))
  wanted = [str(x) for x in map_llms]
  unknown = [x for x in wanted if x not in names]
  if unknown or not wanted or len(set(wanted)) != len(wanted):
    raise ValueError(
        'map_llms: expected distinct names among the LLMs '
        f'{list(names)}, got {list(map_llms)!r}.'
    )
  return np.asarray(sorted(names.index(x) for x in wanted))


def from_clustering(
    clustering: Clustering,
    probe_emb_pd,
    probe_quality_pm,
    probe_mask_pm,
    cost_m,
    llm_names,
    *,
    probe_ids,
    probe_texts,
    encoder_id='',
    encoder_hash='',
    shrinkage=0.0,
    trim: bool = True,
    cluster_map: maps.ClusterMap | None = None,
) -> Router:
  """A router from a fitted clustering, its map and validated probe labels.

  ``trim`` drops the padded clusters (real clusters come first);
  ``cluster_map`` None is K-means.
  """
  router_state.check_some_llms(len(llm_names), 'llm_names')
  cmap = maps.kmeans_map() if cluster_map is None else cluster_map
  if trim:
    cmap = maps.trimmed(cmap, clustering.cluster_mask_k)
    clustering = trimmed_clustering(clustering)
  centroids_kd, mask_k = clustering.centroids_kd, clustering.cluster_mask_k
  pmask = np.asarray(probe_mask_pm, bool)
  router = Router(
      centroids_kd=jnp.asarray(centroids_kd, jnp.float32),
      cluster_mask_k=jnp.asarray(mask_k, bool),
      probe_emb_pd=jnp.asarray(probe_emb_pd, jnp.float32),
      probe_error_pm=jnp.asarray(
          np.where(pmask, 1.0 - np.asarray(probe_quality_pm), 0.0), jnp.float32
      ),
      probe_visible_pm=jnp.asarray(pmask),
      cost_m=jnp.asarray(cost_m, jnp.float32),
      shrinkage=jnp.asarray(
          router_state.check_shrinkage(shrinkage), jnp.float32
      ),
      psi_km=None,
      count_km=None,
      se_km=None,
      global_m=None,
      llm_names=tuple(llm_names),
      probe_ids=tuple(probe_ids),
      probe_texts=tuple(probe_texts),
      encoder_id=str(encoder_id),
      encoder_hash=str(encoder_hash),
      cluster_map=cmap,
  )
  return router_state.rebuild(router)


def trimmed_clustering(clustering: Clustering) -> Clustering:
  """``clustering`` without its padded clusters (real clusters come first)."""
  k = int(np.asarray(clustering.cluster_mask_k).sum())
  return clustering.replace(
      centroids_kd=clustering.centroids_kd[:k],
      cluster_mask_k=clustering.cluster_mask_k[:k],
  )


@functools.partial(jax.jit, static_argnames=('k_max', 'n_init', 'max_iter'))
def _kmeans_jit(key, emb_nd, weight_n, k, *, k_max, n_init, max_iter):
  return kmeans.kmeans(
      key, emb_nd, weight_n, k, k_max=k_max, n_init=n_init, max_iter=max_iter
  )
