"""The paper's static pool (Table 2): train pool = test pool = all LLMs.

Every LLM is both a training LLM (its training-prompt labels fit the
methods) and a test LLM (the routers choose among all of them), so this
measures routing among known LLMs, the setting of most routers before
UniRoute. As in the paper, K comes from {5, 10, 25, 50, 100, 200, 300},
which the paper prunes to the probe-set size N_val: the RouterBench
subset's N_val = 318 keeps all; on a smaller probe set pass
``--config.clustering.kmeans_k`` (the protocol warns for K > N_val)::

  python experiments/reproduce.py --config=configs/static_pool.py \
      --workdir=results/static_pool

or ``unirouter evaluate --data routerbench_subset --pool static
--kmeans-k 5 10 25 50 100 200 300``.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.defaults import DATASET_PROTOCOL

# The paper's K candidates in the static pool.
STATIC_POOL_K = (5, 10, 25, 50, 100, 200, 300)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Static pool on the RouterBench subset; ``arg``: None, 'tiny', 'full'."""
  c = default.dataset_config(
      arg, 'routerbench_subset', DATASET_PROTOCOL['routerbench_subset']
  )
  with c.unlocked():
    c.protocol.static_pool = True
    if arg != 'tiny':
      c.clustering.kmeans_k = STATIC_POOL_K
  c.lock()
  return c
