"""Compile time of the validation-size study: padded (one program) vs not.

The study (``experiments/val_size_study.py``) runs the protocol at every
N_val of ``configs/val_size_study.py``. Unpadded, each N_val is a program of
its own shapes; with ``evaluation.padding`` all share one. This script
prepares, compiles and runs both ways side by side in one process (same
data, methods and trials; the persistent compilation cache off), checks
that the per-trial Areas agree, and prints compile and run seconds and
their ratios. Run::

  python benchmarks/val_size_compile.py [--trials 8] [--n-val 100 150 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time

from machine import machine  # pylint: disable=g-import-not-at-top

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--trials', type=int, default=8)
  ap.add_argument(
      '--n-val', type=int, nargs='+', default=list(range(100, 501, 50))
  )
  ap.add_argument('--data', default='routerbench_subset')
  a = ap.parse_args(argv)

  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  jax.config.update('jax_enable_compilation_cache', False)
  from unirouter_jax.evaluation import (  # pylint: disable=g-import-not-at-top
      protocol,
      sweep,
  )
  from unirouter_jax.shell import workdir  # pylint: disable=g-import-not-at-top

  spec = workdir.RunSpec.create(
      a.data,
      methods=('uniroute_kmeans', 'knn'),
      num_trials=a.trials,
      trial_batch_size=sweep.CPU_TRIAL_BATCH,
      **workdir.DATASET_PROTOCOL.get(a.data, {}),
  )
  _, data, _ = workdir.load_routing_data(spec)
  est = workdir.select_estimators(spec)
  n = data.num_prompts
  configs = [
      dataclasses.replace(spec.protocol, val_fraction=v / n) for v in a.n_val
  ]
  shared = protocol.common_padding(data, est, configs)
  key = jax.random.key(0)
  out = {}
  for mode in ('unpadded', 'padded'):
    compile_s = run_s = 0.0
    areas = []
    for cfg in configs:
      if mode == 'padded':
        cfg = dataclasses.replace(cfg, padding=shared)
      prog = sweep.prepare_sweep(key, data, est, cfg)
      t = time.perf_counter()
      prog = prog.compile()
      compile_s += time.perf_counter() - t
      t = time.perf_counter()
      res = prog.gathered()
      run_s += time.perf_counter() - t
      areas.append({k: r.metrics.area for k, r in res.methods.items()})
    out[mode] = dict(compile_s=compile_s, run_s=run_s, areas=areas)
    print(
        f'{mode:9s} {len(configs)} N_val x {a.trials} trials: compile '
        f'{compile_s:6.1f} s, run {run_s:6.1f} s',
        flush=True,
    )
  gap = max(
      float(np.max(np.abs(p[k] - u[k])))
      for p, u in zip(
          out['padded']['areas'], out['unpadded']['areas'], strict=True
      )
      for k in p
  )
  u, p = out['unpadded'], out['padded']
  print(
      f'compile: {u["compile_s"] / p["compile_s"]:.2f}x less padded; run: '
      f'{u["run_s"] / p["run_s"]:.2f}x (unpadded / padded); total '
      f'{(u["compile_s"] + u["run_s"]) / (p["compile_s"] + p["run_s"]):.2f}x'
  )
  print(f'largest per-trial Area difference: {gap:.2e}')
  print(json.dumps({'machine': machine()}))


if __name__ == '__main__':
  main()
