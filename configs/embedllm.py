"""Upstream EmbedLLM (HF RZ412/EmbedLLM), from a local folder.

112 LLMs x ~36k prompts; cost = number of parameters, from the bundled
sourced table ``datasets/prices/embedllm_params_billion.csv`` (the size in
the name only as a fallback; an LLM with neither is an error).
Protocol as the paper: LLMs 2/3 train, 1/3 test; prompts 60/10/30. The data
is not shipped: pass the folder holding question_order.csv.

Run::

  python experiments/reproduce.py --config=configs/embedllm.py --config.data.name=/path/to/EmbedLLM \
      --workdir=results/embedllm

Expected (paper, Gecko embeddings): UniRoute (K-means) Area .648, K-NN .636,
ZeroRouter .607.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The embedllm protocol; ``arg`` is None, ``'tiny'`` or ``'full'``."""
  return default.dataset_config(
      arg, '', DATASET_PROTOCOL['embedllm'], format='embedllm'
  )
