"""The built-in routers, as :class:`~unirouter_jax.estimators.base.Estimator` s.

Every method the protocol, the sweeps, the CLI and the plots know is listed
in :func:`builtin_estimators`: one explicit mapping, no registry filled by
import side effects. A new router is one module that builds an ``Estimator``
and passes it to :func:`unirouter_jax.evaluation.protocol.run_protocol` (see
``docs/extending.md``).

Hyperparameter grids follow method.md 2.4: K-means candidates 3..N_val/50
(at least 3..8), K-NN candidates 5..N_val/3, each on a geometric grid of at
most 8 values, never more clusters than training prompts.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from unirouter_jax.core import curves, kmeans, psi, routing
from unirouter_jax.core.structs import Clustering, LLMFeatures, TrialInputs
from unirouter_jax.estimators import baselines, learned_map
from unirouter_jax.estimators.base import (
    Estimator,
    TwoStageFit,
    reused,
    single_point,
)
from unirouter_jax.estimators.neural import clairvoyant_oracle, retrained

Array = jax.Array


def kmeans_k_grid(n_train: int, n_val: int, num: int = 8) -> np.ndarray:
  """K candidates 3..max(8, N_val / 50) (method.md 2.4), at most ``num``."""
  hi = max(8, n_val // 50)
  hi = min(hi, n_train)
  lo = min(3, hi)
  return np.unique(np.round(np.geomspace(lo, hi, num)).astype(np.int32))


def knn_k_grid(n_train: int, n_val: int, num: int = 8) -> np.ndarray:
  """k candidates 5..N_val / 3 (method.md 2.4), at most ``num``."""
  hi = max(6, n_val // 3)
  hi = min(hi, n_val)
  lo = min(5, hi)
  return np.unique(np.round(np.geomspace(lo, hi, num)).astype(np.int32))


def fixed_kmeans_k(n_train: int, n_val: int) -> np.ndarray:
  """[project choice] K without selection (no training LLMs): about ten
  probe prompts per cluster, within the grid's 3..8 (method.md 2.4)."""
  return np.asarray([min(n_train, max(3, min(8, n_val // 10)))], np.int32)


def fixed_knn_k(n_train: int, n_val: int) -> np.ndarray:
  """k without selection: sqrt(N_val), the paper's Math+Code rule."""
  del n_train
  return np.asarray([max(1, min(n_val, round(n_val**0.5)))], np.int32)


def _train_weight(inputs: TrialInputs) -> Array:
  n = inputs.emb_nd.shape[0]
  return jnp.zeros((n,), inputs.emb_nd.dtype).at[inputs.train_idx].set(1.0)


@struct.dataclass
class ClusterParams:
  """Fitted state of the cluster routers (K-means, soft, learned map)."""

  clustering: Clustering
  features: LLMFeatures
  beta: Array
  map_params: learned_map.LearnedMapParams | None = None


def _fit_clusters(key, inputs: TrialInputs, k, pad, *, n_init, max_iter):
  return kmeans.kmeans(
      key,
      inputs.emb_nd,
      _train_weight(inputs),
      k,
      k_max=pad,
      n_init=n_init,
      max_iter=max_iter,
  )


def _probe_features(assign_vk, inputs: TrialInputs, clustering: Clustering):
  """``psi`` from the probe (validation) labels, method.md 2.1."""
  return psi.llm_features(
      assign_vk,
      inputs.error_nm[inputs.val_idx],
      inputs.visible_nm[inputs.val_idx],
      cluster_mask_k=clustering.cluster_mask_k,
  )


def _cluster_prompt_fit(key, inputs, hp, pad, *, n_init=3, max_iter=100):
  """The label-free prompt side shared by the protocol's two views."""
  return _fit_clusters(
      key, inputs, hp['k'], pad, n_init=n_init, max_iter=max_iter
  )


def _kmeans_llm_fit(clustering, key, inputs, hp, pad):
  del key, hp, pad
  feats = psi.cluster_features(
      inputs.emb_nd[inputs.val_idx],
      clustering,
      inputs.error_nm[inputs.val_idx],
      inputs.visible_nm[inputs.val_idx],
  )
  return ClusterParams(clustering, feats, jnp.asarray(jnp.inf))


def _kmeans_gamma(params: ClusterParams, emb_qd, inputs, pad):
  del inputs, pad
  phi_qk = kmeans.one_hot_assign(emb_qd, params.clustering)
  return routing.uniroute_gamma(phi_qk, params.features.psi_km)


def _soft_llm_fit(clustering, key, inputs, hp, pad):
  del key, pad
  beta = jnp.asarray(hp['beta'], inputs.emb_nd.dtype)
  emb_vd = inputs.emb_nd[inputs.val_idx]
  feats = _probe_features(
      kmeans.responsibilities(emb_vd, clustering, beta), inputs, clustering
  )
  return ClusterParams(clustering, feats, beta)


def _soft_gamma(params: ClusterParams, emb_qd, inputs, pad):
  del inputs, pad
  phi_qk = kmeans.responsibilities(emb_qd, params.clustering, params.beta)
  return routing.uniroute_gamma(phi_qk, params.features.psi_km)


def _learned_llm_fit(
    clustering,
    key,
    inputs,
    hp,
    pad,
    *,
    arch='mlp',
    epochs=5,
    batch_size=64,
    lr=learned_map.LEARNING_RATE,
    psi_from='val',
):
  _, m_key = jax.random.split(key)
  base = _kmeans_llm_fit(clustering, key, inputs, hp, pad)
  # [project choice] psi of the training LLMs while the map is fitted: from
  # the probe (validation) set by default (paper Sec. 5.2), or from the
  # training set (App. F.1). Routing always uses the probe-set psi.
  fit_psi_km = base.features.psi_km
  if psi_from == 'train':
    fit_psi_km = psi.cluster_features(
        inputs.emb_nd[inputs.train_idx],
        clustering,
        inputs.error_nm[inputs.train_idx],
        inputs.visible_nm[inputs.train_idx],
    ).psi_km
  map_params = learned_map.fit_learned_map(
      m_key,
      inputs.emb_nd,
      inputs.train_idx,
      inputs.error_nm,
      inputs.visible_nm,
      inputs.train_llm_m,
      fit_psi_km,
      base.clustering.cluster_mask_k,
      lr,
      arch=arch,
      epochs=epochs,
      batch_size=batch_size,
  )
  return base.replace(map_params=map_params)


def _learned_gamma(params: ClusterParams, emb_qd, inputs, pad, *, arch='mlp'):
  del inputs, pad
  phi_qk = learned_map.cluster_map(
      params.map_params, emb_qd, params.clustering.cluster_mask_k, arch=arch
  )
  return routing.uniroute_gamma(phi_qk, params.features.psi_km)


def _knn_fit(key, inputs, hp, pad):
  del key, inputs, pad
  return {'k': jnp.asarray(hp['k'], jnp.int32)}


def _knn_gamma(params, emb_qd, inputs: TrialInputs, pad):
  return baselines.knn_gamma(
      emb_qd,
      inputs.emb_nd[inputs.val_idx],
      inputs.error_nm[inputs.val_idx],
      inputs.visible_nm[inputs.val_idx],
      params['k'],
      k_max=pad,
      mask_v=inputs.val_mask,
  )


def _zero_fit(key, inputs, hp, pad):
  del key, hp, pad
  return psi.global_error(
      inputs.error_nm[inputs.val_idx], inputs.visible_nm[inputs.val_idx]
  )


def _zero_gamma(params, emb_qd, inputs, pad):
  del inputs, pad
  return jnp.broadcast_to(params[None, :], (emb_qd.shape[0], params.shape[0]))


def _zero_points(params, inputs: TrialInputs, eval_set, pad):
  del pad
  test_cost_m, test_quality_m = curves.single_llm_points(
      eval_set.quality_qm, eval_set.cost_qm, eval_set.weight_q, inputs.pool_m
  )
  return baselines.zero_router_points(
      params, inputs.cost_m, test_quality_m, test_cost_m, inputs.pool_m
  )


@reused
def uniroute_kmeans(*, n_init: int = 3, max_iter: int = 100) -> Estimator:
  """UniRoute (K-means), method.md 2.1."""
  return Estimator(
      name='uniroute_kmeans',
      fit=TwoStageFit(
          functools.partial(
              _cluster_prompt_fit, n_init=n_init, max_iter=max_iter
          ),
          _kmeans_llm_fit,
      ),
      gamma=_kmeans_gamma,
      hp_grid=lambda nt, nv: {'k': kmeans_k_grid(nt, nv)},
      fixed_grid=lambda nt, nv: {'k': fixed_kmeans_k(nt, nv)},
      pad_key='k',
      description='UniRoute (K-means): psi per training-prompt cluster.',
  )


@reused
def uniroute_soft_kmeans(
    *, betas=(4.0, 16.0, 64.0, 256.0), n_init: int = 3
) -> Estimator:
  """UniRoute with soft k-means responsibilities as the cluster map."""

  def grid(nt, nv):
    ks = kmeans_k_grid(nt, nv, num=4)
    kk, bb = np.meshgrid(ks, np.asarray(betas, np.float32), indexing='ij')
    return {'k': kk.ravel(), 'beta': bb.ravel()}

  return Estimator(
      name='uniroute_soft_kmeans',
      fit=TwoStageFit(
          functools.partial(_cluster_prompt_fit, n_init=n_init),
          _soft_llm_fit,
      ),
      gamma=_soft_gamma,
      hp_grid=grid,
      fixed_grid=lambda nt, nv: {
          'k': fixed_kmeans_k(nt, nv),
          'beta': np.asarray([16.0], np.float32),
      },
      pad_key='k',
      description='UniRoute (soft k-means): responsibilities at beta.',
  )


@reused
def uniroute_learned_map(
    *,
    arch: str = 'mlp',
    epochs: int = 5,
    lr: float = learned_map.LEARNING_RATE,
    psi_from: str = 'val',
    k_from: str = 'own',
) -> Estimator:
  """UniRoute (LearnedMap), method.md 2.2.

  Args:
    arch: ``'mlp'`` (the paper's numbers) or ``'linear'``.
    epochs: training epochs (paper: 5).
    lr: Adam learning rate.
    psi_from: where the training LLMs' ``psi`` comes from while the map is
      fitted: ``'val'`` (default) or ``'train'`` (method.md 2.2).
    k_from: ``'own'`` (default): in the selection view each K of a 4-point
      grid gets its own map (``psi`` of the training LLMs from the training
      set, App. F.1) and the map's validation Area picks K; the test view
      fits one map, at that K (5 fits per trial). ``'kmeans'`` (faster): the
      clusters and K of UniRoute (K-means), chosen by its selection view,
      and one map per trial at that K.
  """
  if psi_from not in ('val', 'train'):
    raise ValueError(f"psi_from: expected 'val' or 'train', got {psi_from!r}.")
  if k_from not in ('kmeans', 'own'):
    raise ValueError(f"k_from: expected 'kmeans' or 'own', got {k_from!r}.")
  llm_fit = functools.partial(
      _learned_llm_fit, arch=arch, epochs=epochs, lr=lr, psi_from=psi_from
  )
  name = 'uniroute_learned_map' + ('' if psi_from == 'val' else '_train_psi')
  common = dict(
      gamma=functools.partial(_learned_gamma, arch=arch),
      pad_key='k',
      description=f'UniRoute (LearnedMap, {arch}): learned soft cluster map.',
      needs_training_llms=True,  # the map is fitted on their labels
  )
  if k_from == 'own':
    return Estimator(
        name=name,
        # UniRoute (K-means)'s clustering at the same K (shared per trial).
        fit=TwoStageFit(uniroute_kmeans().fit.prompt_fit, llm_fit),
        hp_grid=lambda nt, nv: {'k': kmeans_k_grid(nt, nv, num=4)},
        fit_selected_only=True,
        **common,
    )
  clusters = uniroute_kmeans()
  return Estimator(
      name=name + '_kmeans_k',
      fit=TwoStageFit(clusters.fit.prompt_fit, llm_fit),
      hp_grid=clusters.hp_grid,
      selector=clusters,
      **common,
  )


@reused
def knn() -> Estimator:
  """K-NN over the validation prompts, method.md 2.3."""
  return Estimator(
      name='knn',
      fit=_knn_fit,
      gamma=_knn_gamma,
      hp_grid=lambda nt, nv: {'k': knn_k_grid(nt, nv)},
      fixed_grid=lambda nt, nv: {'k': fixed_knn_k(nt, nv)},
      pad_key='k',
      description='K-NN: mean error over the k nearest probe prompts.',
  )


@reused
def zero_router() -> Estimator:
  """ZeroRouter: the lower convex hull of (cost, validation error)."""
  return Estimator(
      name='zero_router',
      fit=_zero_fit,
      gamma=_zero_gamma,
      hp_grid=single_point(),
      points=_zero_points,
      description='ZeroRouter: prompt-agnostic, hull of (cost, error).',
  )


def builtin_estimators(*, epochs_scale: float = 1.0) -> dict[str, Estimator]:
  """Every built-in router by name (the one explicit mapping).

  Args:
    epochs_scale: multiplies the training epochs of the trained estimators
      (``:tiny`` configs use less than 1 to keep tests fast).
  """

  def ep(e):
    return max(1, int(round(e * epochs_scale)))

  return {
      'zero_router': zero_router(),
      'knn': knn(),
      'uniroute_kmeans': uniroute_kmeans(),
      'uniroute_soft_kmeans': uniroute_soft_kmeans(),
      'uniroute_learned_map': uniroute_learned_map(epochs=ep(5)),
      'uniroute_learned_map_train_psi': uniroute_learned_map(
          epochs=ep(5), psi_from='train'
      ),
      'uniroute_learned_map_kmeans_k': uniroute_learned_map(
          epochs=ep(5), k_from='kmeans'
      ),
      'mlp_oracle': clairvoyant_oracle('mlp', epochs=ep(30)),
      'matfac_oracle': clairvoyant_oracle('matfac', epochs=ep(30)),
      'mlp_retrained': retrained('mlp', epochs=ep(30)),
      'matfac_retrained': retrained('matfac', epochs=ep(30)),
  }
