"""Probe study: test Area vs labels per new LLM, by probe strategy.

Run::

  python experiments/probe_study.py --config=configs/probe_study.py \
      --workdir=results/probe_study

Onboarding a new LLM labels its answers on the probe (validation) set. On
the bundled RouterBench subset (LLMs 50/50, ~318 probe prompts), every test
LLM gets only ``budget`` probe labels, chosen by each strategy of
``estimators.probing`` (random, stratified, active), for every budget of
``config.probe.budgets`` and every ``psi`` rule of ``config.probe.psi_rules``;
all of it is one ``run_protocol`` program (K-means once per K and trial).
Writes ``probe_study.json``, ``probe_study.md`` and ``probe_study.png``.

Other bundled sets: ``--config=configs/probe_study.py:llmrouter_dc`` (or
``:alpacaeval``); budgets at or above N_val are left out.

Expected (docs/probing.md): Area rises with labels for every strategy;
with UniRoute's plain ``psi`` active is better than random at every budget
(+.018 Area at 10 labels, +.002 at 200, on 400 trials: ``:full``); it does
not reach the all-label Area with half the labels (also evaluated:
``probe.half_budget``). ``:full`` took 9 minutes on 2 CPU cores, most of
it compiling and the stopping estimates; 100 trials take less.
"""

from __future__ import annotations

import ml_collections

from configs import default
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """``arg``: None (100 trials), ``'tiny'``, ``'full'`` (400), or a bundled
  dataset name with its protocol (``'llmrouter_dc'``, ``'alpacaeval'``;
  100 trials)."""
  name = 'routerbench_subset'
  if arg in DATASET_PROTOCOL:
    name, arg = arg, None
  c = default.get_config(arg)
  with c.unlocked():
    c.data.name = name
    for k, v in DATASET_PROTOCOL[name].items():
      c.protocol[k] = v
    if arg in (None, ''):
      c.protocol.num_trials = 100
    # The probed estimators take K from UniRoute (K-means), the reference.
    c.methods = ('uniroute_kmeans',)
    c.output.plots = False  # no per-run plots: the study writes its own

    # The study's own section.
    c.probe = ml_collections.ConfigDict()
    c.probe.strategies = ('random', 'stratified', 'active')
    c.probe.budgets = (10, 20, 50, 100, 200)  # labels per new LLM (+ all)
    # Also ceil(N_val / 2) labels: the budget of the half-label test.
    c.probe.half_budget = True
    # psi from partial labels (estimators.probing.PSI_RULES).
    c.probe.psi_rules = ('plain', 'posterior', 'imputed', 'hierarchical')
    c.probe.active_rounds = 8  # sequential batches of the active strategy
    c.probe.alpha = 0.01  # sign-test level (the paper's)
    if name == 'alpacaeval':
      # ~80 probe prompts: half the labels is 40.
      c.probe.budgets = (10, 20, 30, 40, 60)
    if arg == 'tiny':
      c.probe.budgets = (5, 10)
      c.probe.half_budget = False
      c.probe.psi_rules = ('plain',)
  c.lock()
  return c
