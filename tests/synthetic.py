"""Synthetic routing data with a known cluster structure (for tests)."""

from __future__ import annotations

import numpy as np

from unirouter_jax.core.structs import RoutingData


def cluster_routing_problem(
    seed: int = 0,
    *,
    n: int = 600,
    d: int = 8,
    m: int = 6,
    k: int = 4,
    spread: float = 0.15,
    per_prompt_cost: bool = False,
    missing_rate: float = 0.0,
    specialists: bool = False,
):
  """Prompts in ``k`` Gaussian blobs; each LLM's accuracy depends on the blob.

  With ``specialists`` each LLM is good on one cluster only, so routing by
  cluster beats any single LLM by a wide margin.

  Returns:
    ``(data, cluster_n, acc_km)``: a :class:`RoutingData` whose labels are
    Bernoulli draws of ``acc_km[cluster_n]``, the true cluster of every
    prompt, and the true per-cluster accuracies.
  """
  rng = np.random.default_rng(seed)
  centres_kd = rng.normal(size=(k, d)) * 2.0
  cluster_n = rng.integers(0, k, size=n)
  emb_nd = centres_kd[cluster_n] + spread * rng.normal(size=(n, d))
  acc_km = rng.uniform(0.1, 0.95, size=(k, m))
  if specialists:
    # LLM j is good (0.9) on cluster j mod k only and poor (0.2) elsewhere.
    acc_km = np.full((k, m), 0.2)
    acc_km[np.arange(m) % k, np.arange(m)] = 0.9
  quality_nm = (rng.uniform(size=(n, m)) < acc_km[cluster_n]).astype(np.float32)
  cost_m = np.sort(rng.uniform(0.5, 10.0, size=m)).astype(np.float32)
  if per_prompt_cost:
    cost = cost_m[None, :] * rng.uniform(0.5, 1.5, size=(n, m))
  else:
    cost = cost_m
  mask = rng.uniform(size=(n, m)) >= missing_rate
  data = RoutingData.create(
      emb_nd.astype(np.float32), quality_nm, cost, label_mask_nm=mask
  )
  return data, cluster_n, acc_km
