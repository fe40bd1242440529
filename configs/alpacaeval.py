"""Bundled AlpacaEval 2: 805 instructions x ~53 LLMs, preference vs a fixed
reference as quality.

Protocol: LLMs 2/3 train, 1/3 test; prompts 60/10/30 (method.md 3). Cost is
whatever the loader attaches (output length x a price table, or a size);
see the dataset's provenance in summary.json.

Run::

  python experiments/reproduce.py --config=configs/alpacaeval.py \
      --workdir=results/alpacaeval

Expected: results close to ZeroRouter (one judge, many similar LLMs); see
RESULTS.md.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The alpacaeval protocol; ``arg`` is None, ``'tiny'`` or ``'full'``."""
  return default.dataset_config(
      arg, 'alpacaeval', DATASET_PROTOCOL['alpacaeval']
  )
