"""Bundled LLMRouter DC data: 9 LLMs x ~6k prompts (14 tasks), USD from its
price table.

Protocol: LLMs 2/3 train, 1/3 test; prompts 60/10/30 (method.md 3).

Run::

  python experiments/reproduce.py --config=configs/llmrouter_dc.py \
      --workdir=results/llmrouter_dc

Expected: UniRoute (K-means) Area above ZeroRouter's; see RESULTS.md.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The llmrouter_dc protocol; ``arg`` is None, ``'tiny'`` or ``'full'``."""
  return default.dataset_config(
      arg, 'llmrouter_dc', DATASET_PROTOCOL['llmrouter_dc']
  )
