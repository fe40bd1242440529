"""What each party may see in one trial of the protocol (method.md 2.4, 3).

* :func:`trial_inputs`, the **test view**: training LLMs on training prompts
  and every LLM on the probe (validation) prompts; clairvoyant references
  also see test LLMs on training prompts. Test prompts never enter.
* :func:`selection_inputs`, the **selection view**: training LLMs only,
  ``psi`` from the training set, to choose hyperparameters per trial.
* :func:`eval_set`: the true labels and realised costs a router is scored on.

Labels an estimator may not use are zeroed with ``jnp.where`` and masked, so
poisoning them (even with NaN) cannot change what it computes.

Padded splits (``evaluation.padding``: one compiled program for several
probe-set sizes) carry ``val_mask``/``test_mask``; padding entries are
hidden here: never visible, never scored, never charged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from unirouter_jax.core import curves
from unirouter_jax.core.structs import EvalSet, RoutingData, Split, TrialInputs

Array = jax.Array


def indicator(idx, n, mask=None):
  """``[n]`` bool, True at the entries of ``idx`` where ``mask`` holds."""
  if mask is None:
    return jnp.zeros((n,), bool).at[idx].set(True)
  # max, not set: a padding entry may repeat a real index.
  return jnp.zeros((n,), jnp.int32).at[idx].max(mask.astype(jnp.int32)) > 0


def mean_cost(cost_nm, idx, mask=None):
  """``[m]`` mean cost of each LLM over the prompts ``idx`` (where
  ``mask``)."""
  if mask is None:
    return cost_nm[idx].mean(0)
  w = mask.astype(cost_nm.dtype)[:, None]  # a sum, not a (TF32) matmul
  return jnp.sum(w * cost_nm[idx], 0) / jnp.maximum(w.sum(), 1.0)


def _view(
    data: RoutingData, allowed_nm, split: Split, probe_idx, probe_mask, pool_m
):
  """A :class:`TrialInputs` whose labels outside ``allowed_nm`` are hidden.

  ``probe_idx`` are the prompts ``psi`` comes from (``probe_mask``: its
  real entries); the rule charges each LLM its mean cost on them.
  """
  visible = allowed_nm & data.label_mask_nm
  return TrialInputs(
      emb_nd=data.emb_nd,
      error_nm=jnp.where(visible, 1.0 - data.quality_nm, 0.0),
      visible_nm=visible,
      train_idx=split.train_idx,
      val_idx=probe_idx,
      train_llm_m=split.train_llm_m,
      pool_m=pool_m,
      cost_m=mean_cost(data.cost_nm, probe_idx, probe_mask),
      val_mask=probe_mask,
  )


def trial_inputs(
    data: RoutingData, split: Split, *, clairvoyant: bool = False
) -> TrialInputs:
  """The test view: what an estimator may see in this trial."""
  n = data.num_prompts
  train_n = indicator(split.train_idx, n)
  val_n = indicator(split.val_idx, n, split.val_mask)
  any_llm = split.train_llm_m | split.test_llm_m
  if clairvoyant:
    allowed = (train_n | val_n)[:, None] & any_llm[None, :]
  else:
    allowed = (train_n[:, None] & split.train_llm_m[None, :]) | (
        val_n[:, None] & any_llm[None, :]
    )
  return _view(
      data, allowed, split, split.val_idx, split.val_mask, split.test_llm_m
  )


def selection_inputs(data: RoutingData, split: Split) -> TrialInputs:
  """The selection view: training LLMs only, ``psi`` from the training set."""
  n = data.num_prompts
  train_n = indicator(split.train_idx, n)
  allowed = train_n[:, None] & split.train_llm_m[None, :]
  return _view(data, allowed, split, split.train_idx, None, split.train_llm_m)


def eval_set(
    data: RoutingData, idx: Array, pool_m: Array, mask: Array | None = None
) -> EvalSet:
  """True labels and realised costs of the prompts ``idx`` (those where
  ``mask`` holds count; the others are left out like unlabelled ones)."""
  label_mask = data.label_mask_nm[idx]
  if mask is not None:
    label_mask = label_mask & mask[:, None]
  return curves.eval_set(
      data.quality_nm[idx], label_mask, data.cost_nm[idx], pool_m
  )


def test_set(data: RoutingData, split: Split) -> EvalSet:
  """The test prompts, scored among the test LLMs."""
  return eval_set(data, split.test_idx, split.test_llm_m, split.test_mask)


def val_set(data: RoutingData, split: Split) -> EvalSet:
  """The validation prompts, scored among the training LLMs (selection)."""
  return eval_set(data, split.val_idx, split.train_llm_m, split.val_mask)
