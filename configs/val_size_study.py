"""Validation-size study: Area vs N_val, UniRoute (K-means) vs K-NN.

Run::

  python experiments/val_size_study.py --config=configs/val_size_study.py \
      --workdir=results/val_size

For N_val in 100, 150, ..., 500 labelled probe prompts (method.md 3), runs
the protocol of the dataset (default: the bundled RouterBench subset) with
``val_fraction = N_val / n`` and plots the mean test Area with +-2 standard
error bands. Expected (the paper's claim): UniRoute's edge over K-NN is
largest at small N_val.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """``arg`` is None (100 trials per N_val), ``'tiny'``, ``'full'``, or
  ``'hierarchical'``: hierarchical shrinkage of ``psi`` against the paper's
  plain ``psi`` at N_val 25..500 (issue #20; 100 trials)."""
  hier = arg == 'hierarchical'
  if hier:
    arg = None
  c = default.get_config(arg)
  with c.unlocked():
    c.data.name = 'routerbench_subset'
    for k, v in DATASET_PROTOCOL['routerbench_subset'].items():
      c.protocol[k] = v
    c.methods = ('uniroute_kmeans', 'knn')
    if arg != 'tiny':
      c.protocol.num_trials = 100  # the paper's study: 100 trials
    c.output.plots = False  # per-N_val runs: only the study's own plot

    # The study's own section.
    c.val_size = ml_collections.ConfigDict()
    c.val_size.n_val = tuple(range(100, 501, 50))  # probe-set sizes
    if arg == 'tiny':
      c.val_size.n_val = (30, 60)
    if hier:
      c.methods = ('uniroute_hierarchical', 'uniroute_kmeans')
      c.val_size.n_val = (25, 50, 100, 200, 300, 400, 500)
  c.lock()
  return c
