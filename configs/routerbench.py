"""Upstream RouterBench (routerbench_0shot.pkl), from a local path.

11 LLMs x ~36k prompts, USD per prompt. Protocol as the paper: LLMs 50/50;
prompts 60/1/39 (validation 1%).

Run::

  python experiments/reproduce.py --config=configs/routerbench.py --config.data.name=/path/to/routerbench_0shot.pkl \
      --workdir=results/routerbench

Expected (paper, Gecko embeddings): UniRoute (K-means) Area .712, K-NN .707,
ZeroRouter .689.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The routerbench protocol; ``arg`` is None, ``'tiny'`` or ``'full'``."""
  return default.dataset_config(
      arg, '', DATASET_PROTOCOL['routerbench'], format='routerbench'
  )
