"""Bundled RouterBench subset: 11 LLMs x 3,178 prompts, real USD per prompt.

ARC-Challenge, MBPP and Winogrande from RouterBench 0-shot. Protocol: LLMs
50/50 as in the paper; prompts 60/10/30. [project choice] validation 10%
(~318 prompts) instead of the paper's 1% of 36k prompts (~360), to keep the
paper's absolute probe-set size on our 3,178 prompts.

Run::

  python experiments/reproduce.py --config=configs/routerbench_subset.py \
      --workdir=results/routerbench_subset

Expected: UniRoute (K-means) Area above ZeroRouter's; see RESULTS.md.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The routerbench_subset protocol; ``arg`` is None, ``'tiny'`` or ``'full'``."""
  return default.dataset_config(
      arg, 'routerbench_subset', DATASET_PROTOCOL['routerbench_subset']
  )
