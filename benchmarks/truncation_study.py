r"""Which end of a long prompt should the 256-token encoder read?

RouterBench ARC / Winogrande prompts put few-shot exemplars *before* the
question, so truncating the end (sentence-transformers' default, ``head``)
drops the question. This study routes the RouterBench subset with the bundled
embeddings of each truncation policy (``head``, ``tail``, ``head_tail``) under
the same splits and keys (paired), and prints UniRoute (K-means) and K-NN
Area per policy with a sign test against ``head``.

  .venv/bin/python benchmarks/truncation_study.py --trials 100
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np

from unirouter_jax import data, encoder
from unirouter_jax.core.structs import RoutingData
from unirouter_jax.estimators import builtin as methods
from unirouter_jax.evaluation import protocol, stats, summary
from unirouter_jax.shell.workdir import DATASET_PROTOCOL


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--dataset', default='routerbench_subset')
  parser.add_argument('--trials', type=int, default=100)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()

  ds = data.load(args.dataset)
  cfg = protocol.ProtocolConfig(
      num_trials=args.trials, **DATASET_PROTOCOL[args.dataset]
  )
  every = methods.builtin_estimators()
  ests = {k: every[k] for k in ('zero_router', 'knn', 'uniroute_kmeans')}
  splits = protocol.make_splits(
      jax.random.key(args.seed), ds.num_prompts, ds.num_llms, cfg
  )
  grid_g = np.linspace(0.0, 1.0, cfg.grid_points)
  per_trial, rows = {}, []
  for policy in encoder.POLICIES:
    t0 = time.time()
    emb = encoder.bundled_embeddings(ds, policy)
    rd = RoutingData.create(
        emb, ds.quality_nm, ds.cost_nm, ds.label_mask_nm, ds.llm_names
    )
    res = protocol.run_protocol(
        jax.random.key(args.seed), rd, ests, cfg, splits=splits
    )
    table = summary.summarise(res, grid_g)
    for name in ('uniroute_kmeans', 'knn'):
      per_trial[policy, name] = np.asarray(res.methods[name].metrics.area)
      rows.append((policy, name, table[name]))
    print(f'{policy}: {time.time() - t0:.0f} s', flush=True)

  print(
      f'\n{args.dataset}, {args.trials} paired trials, '
      f'{platform.processor() or platform.machine()}, jax {jax.__version__}'
  )
  print(
      '| policy | method | Area (mean curve) | per-trial mean [95% CI] |'
      ' vs head (W/L, p) |'
  )
  print('|---|---|---|---|---|')
  for policy, name, row in rows:
    lo, hi = row['area_ci']
    if policy == 'head':
      test = '-'
    else:
      wins, losses, _, p = stats.sign_test(
          per_trial[policy, name], per_trial['head', name]
      )
      test = f'{wins}/{losses}, p={p:.2g}'
    print(
        f'| {policy} | {name} | {row["area"]:.4f} | '
        f'{row["area_trial_mean"]:.4f} [{lo:.4f}, {hi:.4f}] | {test} |'
    )


if __name__ == '__main__':
  main()
