"""Upstream SPROUT (HF CARROT-LLM-Routing/SPROUT), from a local path.

13-15 LLMs x ~44k prompts, USD from token counts x the SPROUT price list.
Protocol as the paper: LLMs 2/3 train, 1/3 test; prompts 60/1/39.

Run::

  python experiments/reproduce.py --config=configs/sprout.py --config.data.name=/path/to/sprout \
      --workdir=results/sprout

Expected (paper, Gecko embeddings): UniRoute (K-means) Area .850, K-NN .844,
ZeroRouter .820.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The sprout protocol; ``arg`` is None, ``'tiny'`` or ``'full'``."""
  return default.dataset_config(
      arg, '', DATASET_PROTOCOL['sprout'], format='sprout'
  )
