"""Pytree data model of unirouter_jax.

Every array carries its axes in its name suffix. The glossary, used in every
module of the package:

  n  prompts                 d  embedding dimension
  k  clusters (padded to k_max; ``cluster_mask_k`` marks the real ones)
  m  LLMs (padded to m_max; pool masks mark the members of a pool)
  l  cost weights (lambdas)  g  points of the common normalised-cost grid
  p  points of a deferral curve before its envelope is taken
  q  query prompts (the prompts being routed or scored)
  v  validation (probe) prompts  G  hyperparameter grid points
  s  sweep points / trials   t  optimisation steps

This module is the whole data model: datasets (``RoutingData``), splits,
fitted state (``Clustering``, ``LLMFeatures``), what an estimator may see
(``TrialInputs``) and what it is scored on (``EvalSet``), results
(``CurveMetrics``, ``MethodResult``, ``TrialResult``) and the deployable
router (``Router``, ``RouteOutput``).

All containers are frozen ``flax.struct`` dataclasses, so they are pytrees:
they pass through ``jit``, ``vmap`` and ``lax.scan`` unchanged. Static,
non-array metadata (names) is marked ``pytree_node=False``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = jax.Array


def _check(cond: bool, arg: str, expected: str, got: Any) -> None:
  if not cond:
    raise ValueError(f'{arg}: expected {expected}, got {got}.')


@struct.dataclass
class RoutingData:
  """A routing dataset on the device.

  Attributes:
    emb_nd: ``[n, d]`` prompt embeddings.
    quality_nm: ``[n, m]`` quality labels in [0, 1] (0 where missing).
    label_mask_nm: ``[n, m]`` True where a label exists.
    cost_nm: ``[n, m]`` cost of LLM m on prompt n (per-LLM costs broadcast).
    llm_names: ``m`` names (static).
  """

  emb_nd: Array
  quality_nm: Array
  label_mask_nm: Array
  cost_nm: Array
  llm_names: tuple[str, ...] = struct.field(pytree_node=False, default=())

  @property
  def num_prompts(self) -> int:
    return self.emb_nd.shape[0]

  @property
  def num_llms(self) -> int:
    return self.quality_nm.shape[1]

  @classmethod
  def create(
      cls,
      emb_nd,
      quality_nm,
      cost,
      label_mask_nm=None,
      llm_names=None,
  ) -> RoutingData:
    """Validates host arrays and builds the device dataset.

    Args:
      emb_nd: ``[n, d]`` embeddings.
      quality_nm: ``[n, m]`` labels in [0, 1]; NaN marks a missing label when
        ``label_mask_nm`` is None.
      cost: ``[m]`` per-LLM or ``[n, m]`` per-prompt costs, finite and >= 0.
      label_mask_nm: optional ``[n, m]`` bool, True where labelled.
      llm_names: optional ``m`` names.

    Raises:
      ValueError: naming the argument, on wrong shapes or values.
    """
    emb = np.asarray(emb_nd, np.float32)
    q = np.asarray(quality_nm, np.float32)
    _check(emb.ndim == 2, 'emb_nd', 'a 2-D [n, d] array', emb.shape)
    _check(q.ndim == 2, 'quality_nm', 'a 2-D [n, m] array', q.shape)
    n, m = q.shape
    _check(emb.shape[0] == n, 'emb_nd', f'{n} rows (as quality_nm)', emb.shape)
    _check(
        n > 0 and m > 0, 'quality_nm', 'at least one prompt and LLM', q.shape
    )
    if label_mask_nm is None:
      mask = ~np.isnan(q)
    else:
      mask = np.asarray(label_mask_nm, bool)
      _check(
          mask.shape == q.shape, 'label_mask_nm', f'shape {q.shape}', mask.shape
      )
    _check(np.isfinite(emb).all(), 'emb_nd', 'finite values', 'NaN or inf')
    qv = q[mask]
    _check(
        np.isfinite(qv).all() and ((qv >= 0) & (qv <= 1)).all(),
        'quality_nm',
        'labels in [0, 1]',
        f'values in [{np.nanmin(qv) if qv.size else 0}, '
        f'{np.nanmax(qv) if qv.size else 0}]',
    )
    q = np.where(mask, q, 0.0).astype(np.float32)
    c = np.asarray(cost, np.float32)
    if c.ndim == 1:
      _check(c.shape == (m,), 'cost', f'[m]=[{m}] or [n, m]', c.shape)
      c = np.broadcast_to(c[None, :], (n, m))
    _check(
        c.shape == (n, m), 'cost', f'[m]=[{m}] or [n, m]=[{n}, {m}]', c.shape
    )
    _check(np.isfinite(c).all(), 'cost', 'finite values', 'NaN or inf')
    _check((c >= 0).all(), 'cost', 'non-negative values', f'min {c.min()}')
    names = (
        tuple(llm_names)
        if llm_names is not None
        else tuple(f'llm_{i}' for i in range(m))
    )
    _check(len(names) == m, 'llm_names', f'{m} names', len(names))
    return cls(
        emb_nd=jnp.asarray(emb),
        quality_nm=jnp.asarray(q),
        label_mask_nm=jnp.asarray(mask),
        cost_nm=jnp.asarray(np.ascontiguousarray(c)),
        llm_names=names,
    )


@struct.dataclass
class Clustering:
  """K-means result, padded to ``k_max`` clusters.

  Attributes:
    centroids_kd: ``[k_max, d]`` centroids (padded rows are zero).
    cluster_mask_k: ``[k_max]`` True for the real clusters.
    inertia: ``[]`` weighted sum of squared distances to the nearest centroid.
    n_iter: ``[]`` Lloyd iterations run before convergence.
  """

  centroids_kd: Array
  cluster_mask_k: Array
  inertia: Array
  n_iter: Array


@struct.dataclass
class LLMFeatures:
  """Per-cluster error table ``psi`` of a set of LLMs (method.md 2.1).

  Attributes:
    psi_km: ``[k_max, m]`` mean error of LLM m on the labelled prompts of
      cluster k; the LLM's global error where the cluster has no labels.
    count_km: ``[k_max, m]`` (soft) number of labelled prompts behind each
      entry.
    global_m: ``[m]`` mean error over all labelled prompts.
  """

  psi_km: Array
  count_km: Array
  global_m: Array


@struct.dataclass
class Split:
  """One trial's split of LLMs and prompts, as fixed-size index arrays.

  Sizes are equal across trials, so splits stack along a leading ``s`` axis.

  Attributes:
    train_idx: ``[n_train]`` training prompts.
    val_idx: ``[n_val]`` validation prompts.
    test_idx: ``[n_test]`` test prompts.
    train_llm_m: ``[m]`` training LLMs.
    test_llm_m: ``[m]`` test LLMs (disjoint from training ones in the
      dynamic protocol, equal in the static one).
    key: the trial's PRNG key for the estimators (k-means++, minibatches),
      carried with the split so a trial gives the same result whether it
      runs alone or batched with others.
    val_mask: optional ``[n_val]`` bool, the real entries of ``val_idx``
      when it is padded (``evaluation.padding``; None: all are real).
    test_mask: optional ``[n_test]`` bool, the same for ``test_idx``.
    hp_grids: optional per-trial hyperparameter candidates of padded runs:
      method name -> ``{name: [G] values, '_valid': [G] bool}``.
  """

  train_idx: Array
  val_idx: Array
  test_idx: Array
  train_llm_m: Array
  test_llm_m: Array
  key: Array
  val_mask: Array | None = None
  test_mask: Array | None = None
  hp_grids: Any = None


@struct.dataclass
class CurveMetrics:
  """Metrics of one deferral curve (method.md section 3).

  Attributes:
    quality_g: ``[g]`` the curve (upper concave envelope) on the common
      normalised-cost grid.
    area: integral of the curve over normalised cost [0, 1].
    area50: integral over [0, 0.5], not rescaled.
    qnc: quality-neutral cost (ratio; ``inf`` when never reached).
    peak: maximum quality of the curve.
    knot_x_p: ``[p]`` the envelope's vertices (normalised cost, increasing;
      padded by repeating the last one), so the exact curve can be averaged
      on another axis (``evaluation.stats.qnc_of_mean_curve``).
    knot_y_p: ``[p]`` their qualities.
  """

  quality_g: Array
  area: Array
  area50: Array
  qnc: Array
  peak: Array
  knot_x_p: Array
  knot_y_p: Array


@struct.dataclass
class TrialInputs:
  """What an estimator may use in one trial.

  Prompts are referenced by index into the shared embedding matrix, which is
  never copied per trial.

  Attributes:
    emb_nd: ``[n, d]`` embeddings of all prompts.
    error_nm: ``[n, m]`` ``1 - quality`` where visible, 0 elsewhere.
    visible_nm: ``[n, m]`` True where the estimator may use the label.
    train_idx: ``[n_train]`` prompts to fit the prompt side on.
    val_idx: ``[n_val]`` the probe set: prompts whose labels give ``psi``.
    train_llm_m: ``[m]`` LLMs whose training-prompt labels are visible.
    pool_m: ``[m]`` LLMs the router will route among.
    cost_m: ``[m]`` cost the rule charges (mean cost on validation prompts).
    val_mask: optional ``[n_val]`` bool, the real entries of ``val_idx``
      (None: all). Padding entries have no visible label; an estimator
      that uses probe prompts without their labels (K-NN's neighbours)
      must skip them.
  """

  emb_nd: Array
  error_nm: Array
  visible_nm: Array
  train_idx: Array
  val_idx: Array
  train_llm_m: Array
  pool_m: Array
  cost_m: Array
  val_mask: Array | None = None


@struct.dataclass
class EvalSet:
  """Labels of the prompts a router is scored on (test or validation).

  Attributes:
    quality_qm: ``[q, m]`` true quality (0 where missing).
    label_mask_qm: ``[q, m]`` True where labelled.
    cost_qm: ``[q, m]`` realised cost of each LLM on each prompt.
    weight_q: ``[q]`` 1.0 for the prompts that count: those labelled for
      every pool LLM (``core.curves.eval_set``).
  """

  quality_qm: Array
  label_mask_qm: Array
  cost_qm: Array
  weight_q: Array


@struct.dataclass
class MethodResult:
  """One method in one trial.

  Attributes:
    metrics: the test curve and its metrics at the selected hyperparameters.
    selected: index of the selected grid point.
    test_area_g: ``[G]`` test Area at every grid point (Area vs K plots).
    val_area_g: ``[G]`` selection-view validation Area (zeros if G == 1).
  """

  metrics: CurveMetrics
  selected: Array
  test_area_g: Array
  val_area_g: Array


@struct.dataclass
class TrialResult:
  """Everything one trial produces.

  Attributes:
    methods: method name -> :class:`MethodResult`.
    oracle: the per-prompt Oracle's curve (true test labels as gamma).
    num_eval: test prompts scored (those labelled for every test LLM).
    single_x_m: ``[m]`` normalised test cost of each LLM alone.
    single_quality_m: ``[m]`` test quality of each LLM alone.
    test_llm_m: ``[m]`` the test pool.
    best_quality: quality of the best test LLM alone.
    best_cost: its mean test cost (raw units).
    c_min: mean test cost of the cheapest test LLM (raw units).
    c_max: mean test cost of the dearest test LLM (raw units).
  """

  methods: dict[str, MethodResult]
  oracle: CurveMetrics
  num_eval: Array
  single_x_m: Array
  single_quality_m: Array
  test_llm_m: Array
  best_quality: Array
  best_cost: Array
  c_min: Array
  c_max: Array


@struct.dataclass
class Router:
  """A fitted UniRoute (K-means) router. Axes: ``k`` clusters (padded),
  ``d`` embedding dim, ``p`` probe prompts, ``m`` LLMs.

  Attributes:
    centroids_kd: ``[k, d]`` cluster centroids (padded rows are zero).
    cluster_mask_k: ``[k]`` True for the real clusters.
    probe_emb_pd: ``[p, d]`` embeddings of the probe prompts.
    probe_error_pm: ``[p, m]`` ``1 - quality`` of every LLM on the probe set
      (0 where missing).
    probe_visible_pm: ``[p, m]`` True where a probe label exists.
    cost_m: ``[m]`` cost per query of every LLM.
    shrinkage: ``[]`` pseudo-count pulling ``psi`` toward the global error.
    psi_km: ``[k, m]`` per-cluster estimated error used for routing.
    count_km: ``[k, m]`` probe labels behind each entry.
    se_km: ``[k, m]`` standard error of the raw cluster mean (see module).
    global_m: ``[m]`` mean probe error of every LLM.
    llm_names: ``m`` names (static).
    probe_ids: ``p`` probe prompt ids (static).
    probe_texts: ``p`` probe prompt texts (static).
    encoder_id: identifier of the prompt encoder (static).
    encoder_hash: hash of the encoder weights (static; '' if unknown).
    cluster_map: the prompt side ``Phi`` beyond the centroids
      (``deploy.cluster_map.ClusterMap``: soft k-means or a LearnedMap);
      None routes as K-means.
  """

  centroids_kd: Array
  cluster_mask_k: Array
  probe_emb_pd: Array
  probe_error_pm: Array
  probe_visible_pm: Array
  cost_m: Array
  shrinkage: Array
  psi_km: Array
  count_km: Array
  se_km: Array
  global_m: Array
  llm_names: tuple[str, ...] = struct.field(pytree_node=False, default=())
  probe_ids: tuple[str, ...] = struct.field(pytree_node=False, default=())
  probe_texts: tuple[str, ...] = struct.field(pytree_node=False, default=())
  encoder_id: str = struct.field(pytree_node=False, default='')
  encoder_hash: str = struct.field(pytree_node=False, default='')
  cluster_map: Any = None

  @property
  def num_llms(self) -> int:
    return len(self.llm_names)

  @property
  def num_clusters(self) -> int:
    return int(np.asarray(self.cluster_mask_k).sum())

  @property
  def clustering(self) -> Clustering:
    zero = jnp.zeros((), self.centroids_kd.dtype)
    return Clustering(self.centroids_kd, self.cluster_mask_k, zero, zero)


@struct.dataclass
class RouteOutput:
  """Routing decisions with every alternative. Axes: ``q`` prompts.

  Attributes:
    choice_q: ``[q]`` index of the chosen LLM.
    gamma_qm: ``[q, m]`` estimated error of every LLM (1 - quality).
    cost_m: ``[m]`` cost the rule charged.
    cluster_q: ``[q]`` nearest cluster of each prompt.
    lam: ``[]`` the cost weight used.
    llm_names: ``m`` names (static).
  """

  choice_q: Array
  gamma_qm: Array
  cost_m: Array
  cluster_q: Array
  lam: Array
  llm_names: tuple[str, ...] = struct.field(pytree_node=False, default=())

  @property
  def quality_qm(self) -> Array:
    """``[q, m]`` estimated quality ``1 - gamma``."""
    return 1.0 - self.gamma_qm

  @property
  def choice_names(self) -> list[str]:
    return [self.llm_names[i] for i in np.asarray(self.choice_q)]
