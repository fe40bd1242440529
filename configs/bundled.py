"""The main job: the paper's dynamic-pool protocol on the three bundled sets.

Run (``make run``; ``make run-full`` adds ``:full``)::

  python experiments/reproduce.py --config=configs/bundled.py \
      --workdir=results/bundled

Datasets (``sweep()``): the RouterBench subset (11 LLMs, USD per prompt),
LLMRouter DC (9 LLMs, USD from its price table) and AlpacaEval 2 (~53 LLMs),
each with its protocol of ``unirouter_jax.shell.workdir.DATASET_PROTOCOL``.

Variants: default (``make run``) uses 20 trials per dataset [project choice]
so that the whole run, first-time compilation included, finishes in under
10 minutes on a 2-core CPU; ``full`` uses the paper's 400 trials; ``tiny``
is a seconds-long smoke test.

Expected: the tables of RESULTS.md (printed at the end), plots under
``<workdir>/<dataset>/plots/``.
"""

from __future__ import annotations

from collections.abc import Iterator

import ml_collections

from configs import default
from unirouter_jax.shell.defaults import PAPER_METHODS
from unirouter_jax.shell.workdir import DATASET_PROTOCOL

DATASETS = ('routerbench_subset', 'llmrouter_dc', 'alpacaeval')
# Trials of `make run` on a 2-core CPU (measured; see the README).
QUICK_TRIALS = 20


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Base config of the sweep; ``arg`` is None, ``'tiny'`` or ``'full'``."""
  c = default.get_config(arg)
  if arg != 'tiny':  # the paper's rows and its camera-ready baselines
    with c.unlocked():
      c.methods = PAPER_METHODS
  if arg in (None, ''):
    with c.unlocked():
      c.protocol.num_trials = QUICK_TRIALS
  return c


def sweep(arg: str | None = None) -> Iterator[dict[str, object]]:
  """One override dict per dataset (flattened ConfigDict keys)."""
  del arg
  for name in DATASETS:
    yield {
        'data.name': name,
        **{f'protocol.{k}': v for k, v in DATASET_PROTOCOL[name].items()},
    }
