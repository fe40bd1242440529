"""The paper's Math+Code setting: every LLM unseen, no training LLMs.

In the paper (method.md section 4) Math+Code has 4 LLMs, all of them test
LLMs: nothing is known about any LLM but its probe-set labels. With no
training LLMs nothing can select hyperparameters, so each method runs at a
fixed point: K-NN k = sqrt(N_val) (the paper's rule); [project choice]
UniRoute (K-means) K = N_val / 10 clipped to 3..8 (about ten probe prompts
per cluster; ``estimators.builtin.fixed_kmeans_k``). LearnedMap needs
training LLMs and is left out; the clairvoyant MLP (trained on the test
LLMs' labels of the training prompts) is the paper's reference row.

The Math+Code data itself is not bundled; the setting runs on any dataset
by holding every LLM out (default: the bundled RouterBench subset)::

  python experiments/reproduce.py --config=configs/math_code.py \
      --workdir=results/math_code [--config.data.name=llmrouter_dc]

or ``unirouter evaluate --data routerbench_subset --pool unseen``.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.defaults import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Math+Code on the RouterBench subset; ``arg``: None, 'tiny', 'full'."""
  c = default.dataset_config(
      arg, 'routerbench_subset', DATASET_PROTOCOL['routerbench_subset']
  )
  with c.unlocked():
    c.protocol.no_training_llms = True
    c.methods = ('zero_router', 'knn', 'uniroute_kmeans', 'mlp_oracle')
    if arg == 'tiny':  # one fixed point each, as the setting requires
      c.clustering.kmeans_k = (3,)
      c.clustering.knn_k = (5,)
  c.lock()
  return c
