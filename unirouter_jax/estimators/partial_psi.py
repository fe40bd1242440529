"""``psi`` of a new LLM from a few probe labels (``docs/probing.md``).

UniRoute's ``psi`` is a plain mean per cluster, with the LLM's global error
where a cluster has no label. With only a budget of probe labels per new
LLM, two estimators use what the known (training) LLMs tell:

* :func:`imputed_psi`: on the probe prompts it was not labelled on, a new
  LLM's error is imputed from the share of known LLMs wrong on that very
  prompt (a two-parameter logistic model fitted to its labels, with a prior
  fitted to the known LLMs); ``psi`` is the cluster mean of the labels and
  the imputations. With every probe prompt labelled it is UniRoute's.
* :func:`hierarchical_psi`: fine clusters shrunk toward coarse clusters,
  those toward the LLM's global error; the strengths come from the training
  LLMs on the training prompts only.

Axes: ``v`` probe prompts, ``k`` clusters, ``f`` features, ``m`` LLMs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax

from unirouter_jax.core import kmeans, psi
from unirouter_jax.core.structs import Clustering, LLMFeatures, TrialInputs

Array = jax.Array

# Salt of the coarse clustering's key.
_COARSE_SALT = 0x9B0F


def _mm(x, y):
  return jnp.matmul(x, y, precision=lax.Precision.HIGHEST)


def known_features(inputs: TrialInputs, clustering: Clustering, known_m):
  """``psi`` of the ``known_m`` LLMs on the training prompts."""
  idx = inputs.train_idx
  return psi.cluster_features(
      inputs.emb_nd[idx],
      clustering,
      inputs.error_nm[idx],
      inputs.visible_nm[idx] & known_m[None, :],
  )


# ------------------------------------------------ per-prompt imputation ---


@struct.dataclass
class ImputePrior:
  """Gaussian prior of a new LLM's logistic model ``logit P[wrong on v] =
  w0 + w1 (s_v - 1/2)``, ``s_v`` the share of known LLMs wrong on ``v``.

  Attributes:
    mean_2: ``[2]`` prior mean (the known LLMs' leave-one-out fits).
    sd_2: ``[2]`` prior standard deviations (their spread, floored).
  """

  mean_2: Array
  sd_2: Array


def known_share(error_vm, label_vm, known_m) -> Array:
  """``[v]`` share of the labelled known LLMs wrong on each prompt (1/2
  where none is labelled)."""
  use_vm = label_vm & known_m[None, :]
  n_v = use_vm.sum(1)
  wrong_v = jnp.where(use_vm, error_vm, 0).sum(1)  # never NaN * 0
  return jnp.where(n_v > 0, wrong_v / jnp.maximum(n_v, 1), 0.5)


def fit_logistic(x_vf, y_vm, w_vm, mean_fm, sd_fm, *, iters: int = 10):
  """``[f, m]`` MAP coefficients of ``logit P[y_vm] = x_vf @ w_fm`` with
  weights ``w_vm`` (0 for unlabelled) and independent ``N(mean_fm,
  sd_fm^2)`` priors (Newton steps on the convex objective; ``mean_fm`` and
  ``sd_fm`` broadcast to ``[f, m]``)."""
  f, m = x_vf.shape[1], y_vm.shape[1]
  y_vm = jnp.where(w_vm > 0, y_vm, 0)  # unlabelled values never enter
  mean_fm = jnp.broadcast_to(mean_fm, (f, m)).astype(y_vm.dtype)
  prec_fm = 1.0 / jnp.broadcast_to(sd_fm, (f, m)).astype(y_vm.dtype) ** 2
  hi = lax.Precision.HIGHEST

  def step(_, w_fm):
    p_vm = jax.nn.sigmoid(jnp.matmul(x_vf, w_fm, precision=hi))
    g_fm = jnp.matmul(x_vf.T, w_vm * (p_vm - y_vm), precision=hi)
    g_fm = g_fm + prec_fm * (w_fm - mean_fm)
    h_vm = w_vm * p_vm * (1 - p_vm)
    h_mff = jnp.einsum('vf,vm,vg->mfg', x_vf, h_vm, x_vf, precision=hi)
    h_mff = h_mff + jax.vmap(jnp.diag)(prec_fm.T)
    d_mf = jnp.linalg.solve(h_mff, g_fm.T[..., None])[..., 0]
    return jnp.clip(w_fm - d_mf.T, -20.0, 20.0)

  return lax.fori_loop(0, iters, step, mean_fm)


def impute_prior(error_vm, label_vm, known_m, real_v) -> ImputePrior:
  """The logistic model's prior from the known LLMs: each one fitted to
  its own labels against the *other* known LLMs' share (weak prior)."""
  dtype = error_vm.dtype
  w_vm = (label_vm & known_m[None, :] & real_v[:, None]).astype(dtype)
  error_vm = jnp.where(w_vm > 0, error_vm, 0)  # others never enter
  n_v = w_vm.sum(1)
  wrong_v = (w_vm * error_vm).sum(1)
  # Leave-one-out share of the others.
  others_n_vm = n_v[:, None] - w_vm
  loo_vm = jnp.where(
      others_n_vm > 0,
      (wrong_v[:, None] - w_vm * error_vm) / jnp.maximum(others_n_vm, 1),
      0.5,
  )
  ok_vm = w_vm * (others_n_vm > 0)

  def one(x_v, y_v, w_v):
    return fit_logistic(
        jnp.stack([jnp.ones_like(x_v), x_v - 0.5], 1),
        y_v[:, None],
        w_v[:, None],
        jnp.zeros((2, 1), dtype),
        jnp.full((2, 1), 5.0, dtype),
    )[:, 0]

  w_m2 = jax.vmap(one, in_axes=(1, 1, 1))(loo_vm, error_vm, ok_vm)
  has_m = known_m & (ok_vm.sum(0) > 0)
  c_m = has_m.astype(dtype)
  n = c_m.sum()
  w_m2 = jnp.where(has_m[:, None], w_m2, 0)
  mean_2 = (c_m[:, None] * w_m2).sum(0) / jnp.maximum(n, 1)
  var_2 = (c_m[:, None] * (w_m2 - mean_2) ** 2).sum(0) / jnp.maximum(n - 1, 1)
  enough = n >= 2
  mean_2 = jnp.where(enough, mean_2, jnp.zeros((2,), dtype))
  sd_2 = jnp.where(enough, jnp.maximum(jnp.sqrt(var_2), 0.5), 2.0)
  return ImputePrior(mean_2, sd_2)


def imputed_psi(
    inputs: TrialInputs, clustering: Clustering, chosen_vm, real_v
) -> LLMFeatures:
  """``psi`` with each pool LLM's unchosen probe labels imputed.

  Args:
    inputs: the trial's test view.
    clustering: the clusters of ``psi``.
    chosen_vm: ``[v, m]`` the probe prompts each pool LLM is labelled on.
    real_v: ``[v]`` bool, the real probe prompts.

  Returns:
    ``LLMFeatures``: pool LLMs from their labels where chosen and a
    logistic imputation from the share of known LLMs wrong on the prompt
    elsewhere (:func:`fit_logistic`, prior :func:`impute_prior`); other
    LLMs from every visible probe label. ``count_km`` counts prompts.
  """
  err_vm = inputs.error_nm[inputs.val_idx]
  vis_vm = inputs.visible_nm[inputs.val_idx]
  pool_1m = inputs.pool_m[None, :]
  known_m = inputs.train_llm_m & ~inputs.pool_m
  share_v = known_share(err_vm, vis_vm, known_m)
  prior = impute_prior(err_vm, vis_vm, known_m, real_v)
  x_v2 = jnp.stack([jnp.ones_like(share_v), share_v - 0.5], axis=1)
  lab_vm = vis_vm & chosen_vm & real_v[:, None]
  w_2m = fit_logistic(
      x_v2,
      jnp.where(lab_vm, err_vm, 0.0),
      lab_vm.astype(err_vm.dtype),
      prior.mean_2[:, None],
      prior.sd_2[:, None],
  )
  p_vm = jax.nn.sigmoid(_mm(x_v2, w_2m))
  return psi.cluster_features(
      inputs.emb_nd[inputs.val_idx],
      clustering,
      jnp.where(pool_1m & ~lab_vm, p_vm, err_vm),
      jnp.where(pool_1m, real_v[:, None], vis_vm),
  )


# ------------------------------------------------- hierarchical shrinkage ---


def hierarchical_psi(
    key, inputs: TrialInputs, clustering: Clustering, keep_vm, pad: int
):
  """``LLMFeatures`` with ``psi`` shrunk fine -> coarse -> global.

  [project choice] The coarse clusters group the fine centroids (weighted
  k-means on them, ``ceil(K / 3)`` groups). Each LLM's coarse error is
  shrunk toward its global error with ``s2`` pseudo-labels, each fine
  error toward its coarse group's with ``s1``. The strengths are
  method-of-moments Beta-binomial concentrations, ``s = mean p(1 - p) /
  tau^2 - 1``, with ``tau^2`` the between-cluster variance (net of
  binomial noise) of the *training* LLMs' errors on the training prompts:
  no test LLM or probe label chooses them.
  """
  dtype = clustering.centroids_kd.dtype
  train_m = inputs.train_llm_m
  tr = known_features(inputs, clustering, train_m)
  mass_k = kmeans.one_hot_assign(inputs.emb_nd[inputs.train_idx], clustering)
  mass_k = mass_k.sum(0)
  k_real = clustering.cluster_mask_k.sum()
  k_coarse = jnp.maximum(1, (k_real + 2) // 3)
  coarse = kmeans.kmeans(
      jax.random.fold_in(key, _COARSE_SALT),
      clustering.centroids_kd,
      mass_k.astype(dtype),
      k_coarse,
      k_max=pad,
      n_init=1,
  )
  group_kg = kmeans.one_hot_assign(clustering.centroids_kd, coarse)
  group_kg = group_kg * clustering.cluster_mask_k[:, None].astype(dtype)

  def strength(psi_km, count_km, mask_k, parent_km):
    w_km = ((count_km > 0) & mask_k[:, None] & train_m[None, :]).astype(dtype)
    dev_km = (psi_km - parent_km) ** 2 - psi_km * (1 - psi_km) / jnp.maximum(
        count_km, 1
    )
    tau2 = jnp.maximum((w_km * dev_km).sum() / jnp.maximum(w_km.sum(), 1), 0)
    pq = (w_km * psi_km * (1 - psi_km)).sum() / jnp.maximum(w_km.sum(), 1)
    return jnp.clip(pq / jnp.maximum(tau2, 1e-6) - 1, 0.0, 1e4)

  def coarse_of(feats: LLMFeatures):
    count_gm = _mm(group_kg.T, feats.count_km)
    sum_gm = _mm(group_kg.T, feats.count_km * feats.psi_km)
    ok = count_gm > 0
    psi_gm = jnp.where(ok, sum_gm / jnp.where(ok, count_gm, 1), 0.5)
    return LLMFeatures(psi_gm, count_gm, feats.global_m)

  tr_coarse = coarse_of(tr)
  g_mask = coarse.cluster_mask_k
  s2 = strength(
      tr_coarse.psi_km, tr_coarse.count_km, g_mask, tr.global_m[None, :]
  )
  s1 = strength(
      tr.psi_km,
      tr.count_km,
      clustering.cluster_mask_k,
      _mm(group_kg, tr_coarse.psi_km),
  )
  feats = psi.cluster_features(
      inputs.emb_nd[inputs.val_idx],
      clustering,
      inputs.error_nm[inputs.val_idx],
      keep_vm,
  )
  co = coarse_of(feats)
  coarse_gm = psi.shrunk_psi(co, s2)
  parent_km = _mm(group_kg, coarse_gm)
  den_km = feats.count_km + s1
  fine_km = jnp.where(
      den_km > 0,
      (feats.count_km * feats.psi_km + s1 * parent_km)
      / jnp.where(den_km > 0, den_km, 1),
      parent_km,
  )
  # A fine cluster without a coarse group (padding) keeps the plain psi.
  has_group = group_kg.sum(1) > 0
  psi_km = jnp.where(has_group[:, None], fine_km, feats.psi_km)
  return feats.replace(psi_km=psi_km)
