"""Fitting a router on a :class:`~unirouter_jax.data.Dataset`.

:func:`fit_from_dataset` (re-exported by :mod:`unirouter_jax.deploy.io`)
draws a random probe set and, optionally, a random held-out calibration set
(:mod:`unirouter_jax.deploy.heldout`); runs K-means on the other prompts;
builds the cluster map (:mod:`unirouter_jax.deploy.cluster_map`: K-means,
soft k-means at a selected or given ``beta``, or a learned map fitted on the
dataset's LLMs); and optionally selects K, ``beta`` and the shrinkage
strength by validation Area on the non-probe prompts (their labels never
enter psi). Costs come from the dataset or a table ``llm -> cost``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from unirouter_jax.core import kmeans
from unirouter_jax.core.structs import RoutingData, Split
from unirouter_jax.deploy import calibration, cost_table, fitting, heldout
from unirouter_jax.deploy import cluster_map as maps
from unirouter_jax.deploy import router as router_lib
from unirouter_jax.estimators import builtin as methods
from unirouter_jax.evaluation import method_points

Router = router_lib.Router


def default_probe_size(n: int) -> int:
  """10% of the prompts, between 20 and 500 (and at most half of them)."""
  return int(min(max(20, round(0.1 * n)), 500, n // 2))


def fit_from_dataset(
    key,
    ds,
    emb_nd,
    *,
    probe_size: int | None = None,
    k: int | None = None,
    shrinkage: float | None = 0.0,
    strengths: Sequence[float] = calibration.DEFAULT_STRENGTHS,
    encoder_id: str = '',
    encoder_hash: str = '',
    n_init: int = 3,
    calib_size: int | None = 0,
    costs: Mapping[str, float] | None = None,
    cluster_map: str = 'kmeans',
    beta: float | None = None,
    arch: str = 'mlp',
    epochs: int = maps.EPOCHS,
) -> tuple[Router, dict]:
  """Fits a router on every LLM of ``ds``.

  Args:
    key: PRNG key (probe set, K-means and a learned map).
    ds: a :class:`unirouter_jax.data.Dataset`.
    emb_nd: ``[n, d]`` embeddings of ``ds.prompts``.
    probe_size: probe prompts (default :func:`default_probe_size`).
    k: clusters; None selects K on the grid of method.md 2.4.
    shrinkage: pseudo-count; None selects it from ``strengths``.
    strengths: shrinkage candidates when ``shrinkage`` is None.
    encoder_id, encoder_hash: identity of the encoder of ``emb_nd``.
    n_init: K-means restarts.
    calib_size: held-out calibration prompts (None:
      :func:`heldout.default_size`; 0: none, the earlier behaviour), drawn
      after the probe set and never clustered.
    costs: optional ``{llm: cost}`` replacing the dataset's costs (every
      LLM of ``ds`` must have one; see :mod:`cost_table`).
    cluster_map: ``'kmeans'``, ``'soft'`` or ``'learned'``
      (:mod:`unirouter_jax.deploy.cluster_map`); K is chosen as for
      K-means (the map does not enter the choice).
    beta: inverse temperature of ``'soft'``; None selects it from
      ``cluster_map.BETAS`` at the chosen K by the same rule as K (method.md
      2.4: psi from the training prompts, Area of the probe prompts).
    arch, epochs: network and training epochs of a ``'learned'`` map,
      fitted on every LLM of ``ds`` (their labels on the training prompts).

  Returns:
    ``(router, info)``; ``info`` holds the split sizes, the map and (for
    ``'soft'``) ``beta`` and, when anything was selected, the validation
    Area of every (k, beta, strength) candidate; with
    ``calib_size`` > 0, ``info['calibration']`` is the
    :class:`heldout.CalibrationSet` to pass to :func:`save_router`.
  """
  kind = maps.check_kind(cluster_map)
  if beta is not None:
    maps.check_beta(beta)
  if kind == 'learned':
    maps.check_learned(arch, epochs)
  emb = np.asarray(emb_nd, np.float32)
  n = ds.num_prompts
  if emb.shape[:1] != (n,) or emb.ndim != 2:
    raise ValueError(f'emb_nd: expected [{n}, d], got {emb.shape}.')
  p = default_probe_size(n) if probe_size is None else int(probe_size)
  if not 1 <= p < n:
    raise ValueError(f'probe_size: expected 1..{n - 1}, got {probe_size!r}.')
  n_cal = heldout.default_size(n, p) if calib_size is None else int(calib_size)
  if not 0 <= n_cal <= n - p - 1:
    raise ValueError(
        f'calib_size: expected 0..{n - p - 1} (the prompts left after '
        f'{p} probe prompts, less one to cluster), got {calib_size!r}.'
    )
  p_key, k_key = jax.random.split(key)
  perm = np.asarray(jax.random.permutation(p_key, n))
  probe_idx, train_idx = np.sort(perm[:p]), np.sort(perm[p + n_cal :])
  mask = np.asarray(ds.label_mask_nm, bool)
  cost = np.asarray(ds.cost_nm, np.float64)
  if costs is not None:  # the table's costs for every prompt and LLM
    cost = np.broadcast_to(
        cost_table.cost_vector(ds.llm_names, costs).astype(np.float64),
        cost.shape,
    )
  cost_m = np.where(mask, cost, 0).sum(0) / np.maximum(mask.sum(0), 1)
  ks = np.asarray(
      [k] if k is not None else methods.kmeans_k_grid(train_idx.size, p),
      np.int32,
  )
  ss = [shrinkage] if shrinkage is not None else list(strengths)
  if k is not None and not 1 <= k <= train_idx.size:
    raise ValueError(f'k: expected 1..{train_idx.size}, got {k!r}.')
  weight_n = np.zeros((n,), np.float32)
  weight_n[train_idx] = 1.0
  common = dict(
      probe_ids=[str(x) for x in ds.prompt_ids[probe_idx]],
      probe_texts=[str(x) for x in ds.prompts[probe_idx]],
      encoder_id=encoder_id,
      encoder_hash=encoder_hash,
  )
  args = (
      emb[probe_idx],
      np.asarray(ds.quality_nm)[probe_idx],
      mask[probe_idx],
      cost_m,
      ds.llm_names,
  )
  info = {
      'num_probe': p,
      'num_calib': n_cal,
      'num_train': int(train_idx.size),
      'k_candidates': ks.tolist(),
      'strength_candidates': ss,
  }
  best_k = 0
  # K (and beta) by the protocol's rule (method.md 2.4): psi of every LLM
  # from the training prompts, the probe prompts routed by it; never
  # in-sample.
  select = _selector(k_key, emb, ds, cost, mask, train_idx, probe_idx)
  if len(ks) > 1:
    best_k, area_k = select(methods.uniroute_kmeans(n_init=n_init), {'k': ks})
    info['val_area_k'] = area_k.tolist()
  # Only the selected K is clustered (as the protocol clusters it).
  c = kmeans.kmeans(
      k_key,
      jnp.asarray(emb),
      jnp.asarray(weight_n),
      int(ks[best_k]),
      k_max=int(ks.max()),
      n_init=n_init,
  )
  cmap = maps.kmeans_map()
  info['cluster_map'] = kind
  if kind != 'kmeans':  # (K-means keeps its padded clusters, as before)
    c = fitting.trimmed_clustering(c)
  if kind == 'soft':
    if beta is None:
      bs = np.asarray(maps.BETAS, np.float32)
      i, area_b = select(
          methods.uniroute_soft_kmeans(betas=maps.BETAS, n_init=n_init),
          {'k': np.full(bs.shape, ks[best_k], np.int32), 'beta': bs},
      )
      beta = float(bs[i])
      info.update(beta_candidates=bs.tolist(), val_area_beta=area_b.tolist())
    cmap = maps.soft_map(beta)
    info['beta'] = float(beta)
  elif kind == 'learned':
    q_all, p_mask = np.asarray(ds.quality_nm), mask[probe_idx]
    cmap = maps.fit_learned(
        jax.random.fold_in(k_key, 1),
        c,
        emb,
        train_idx,
        np.where(mask, 1.0 - q_all, 0.0),
        mask,
        emb[probe_idx],
        np.where(p_mask, 1.0 - q_all[probe_idx], 0.0),
        p_mask,
        arch=arch,
        epochs=epochs,
    )
    info.update(arch=arch, epochs=int(epochs))
  common['cluster_map'] = cmap
  best = (best_k, ss[0])
  if len(ss) > 1:
    # Shrinkage: psi from the probe set, scored on the training prompts.
    r = router_lib.from_clustering(c, *args, trim=False, **common)
    _, area_s = calibration.select_shrinkage(
        r,
        emb[train_idx],
        np.asarray(ds.quality_nm)[train_idx],
        mask[train_idx],
        np.asarray(cost, np.float32)[train_idx],
        strengths=ss,
    )
    best = (best_k, ss[int(np.argmax(area_s))])
    info['val_area_s'] = area_s.tolist()
  router = router_lib.from_clustering(c, *args, shrinkage=best[1], **common)
  info.update(k=int(ks[best[0]]), shrinkage=float(best[1]))
  if n_cal:
    info['calibration'] = heldout.make(
        emb, ds.prompt_ids, np.sort(perm[p : p + n_cal])
    )
  return router, info


def _selector(key, emb, ds, cost, mask, train_idx, probe_idx):
  """``select(estimator, grid)``: the selection view of method.md 2.4 on
  the training and probe prompts, every LLM of ``ds`` a training LLM."""

  def select(est, grid):
    data = RoutingData.create(
        emb,
        np.asarray(ds.quality_nm),
        np.asarray(cost, np.float32),
        mask,
        ds.llm_names,
    )
    all_m = jnp.ones((ds.num_llms,), bool)
    split = Split(
        train_idx=jnp.asarray(train_idx),
        val_idx=jnp.asarray(probe_idx),
        test_idx=jnp.asarray(probe_idx),
        train_llm_m=all_m,
        test_llm_m=all_m,
        key=key,
    )
    return method_points.select_hparams(key, data, split, est, grid)

  return select
