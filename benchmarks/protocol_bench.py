"""The full held-out-LLM protocol: ours end to end vs NumPy + scikit-learn.

    python benchmarks/protocol_bench.py                       # both shapes
    python benchmarks/protocol_bench.py --shapes routerbench --trials 8 \
        --ref-trials 2
    python benchmarks/protocol_bench.py --shapes embedllm --trials 2 \
        --ref-trials 1 --json protocol_bench.json

Both sides run the protocol of method.md 2-3 with the default method set
(``workdir.DEFAULT_METHODS``: ZeroRouter, K-NN, UniRoute K-means and
LearnedMap, clairvoyant MLP and MatFac) on the same splits. Ours is
``protocol.run_protocol`` as a run uses it (``--tuned``: with
``sweep.tuned_config``). The reference (``reference_trained.py``) is written
from method.md in NumPy + scikit-learn, no JAX, optax or torch, vectorised
the way a careful peer would write it: the evaluation of
``tests/reference/numpy_protocol.py``, scikit-learn's ``KMeans`` for the
K selection of K-means and K-NN (method.md 2.4), and hand-written networks
for LearnedMap (once per trial at the K-means K [project choice, new]) and
the clairvoyant oracles (patience 5 [project choice, new]).

Timings: ours "cold" is the first call (tracing and XLA compile included),
"warm" a second call on fresh splits of the same shape; per trial = warm /
trials; compile share = (cold - warm) / cold. Each method is also timed
alone (warm), on both sides. The reference runs fewer trials (it is slow):
per-trial times are compared, and mean Areas on the splits both ran.
``--repeats N`` keeps the fastest of N warm calls on each side (others'
processes on a shared machine only ever slow a run down). Each side of each shape runs in its own subprocess, so ``ru_maxrss`` (read
right after the full method set) is that side's peak host memory.

Data: ``routerbench`` is the bundled RouterBench subset (3,176 prompts x
384-d MiniLM embeddings, 11 LLMs, 50/50 LLM split, prompts 60/10/30);
``embedllm`` is synthetic data of EmbedLLM's shape (36,054 x 768, 112 LLMs,
1/3 unseen; ``sweep_bench.synthetic``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from machine import machine

EMBEDLLM = (36054, 768, 112)  # prompts, embedding dim, LLMs


def _log(msg: str) -> None:
  """Progress of a child, on stderr (the driver passes it through)."""
  print(msg, file=sys.stderr, flush=True)


def _rss_gb() -> float:
  """Peak resident memory of this process so far (ru_maxrss is in KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ----------------------------------------------------------------- ours ----


def _our_inputs(shape: str, trials: int, tuned: bool):
  """``(RoutingData, ProtocolConfig)`` of a shape (imports jax)."""
  from sweep_bench import synthetic  # pylint: disable=g-import-not-at-top

  from unirouter_jax.core.structs import RoutingData  # pylint: disable=g-import-not-at-top
  from unirouter_jax.evaluation import sweep  # pylint: disable=g-import-not-at-top
  from unirouter_jax.shell import workdir  # pylint: disable=g-import-not-at-top

  name = 'routerbench_subset' if shape == 'routerbench' else 'embedllm'
  spec = workdir.RunSpec.create(
      name, num_trials=trials, **workdir.DATASET_PROTOCOL[name]
  )
  if shape == 'routerbench':
    _, data, _ = workdir.load_routing_data(spec)
  else:
    data = RoutingData.create(*synthetic(*EMBEDLLM))
  cfg = spec.protocol_config(trials)
  return data, (sweep.tuned_config(cfg) if tuned else cfg)


def _timed(fn, repeats=1):
  """``(seconds, result)`` of ``fn()``, blocking on the result; the fastest
  of ``repeats`` calls (other processes on a shared machine only slow)."""
  import jax  # pylint: disable=g-import-not-at-top

  best = np.inf
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - t0)
  return best, out


def _metrics(res, grids) -> dict:
  """Per-trial Area / Area(50%) / QNC / selected value of each method."""
  out = {'area': {}, 'area50': {}, 'qnc': {}, 'selected': {}}
  for name, r in res.methods.items():
    for key in ('area', 'area50', 'qnc'):
      out[key][name] = np.asarray(getattr(r.metrics, key)).tolist()
    grid = grids[name].get('k')
    if grid is not None and len(grid) > 1:
      out['selected'][name] = grid[np.asarray(r.selected)].tolist()
  for key in ('area', 'area50', 'qnc'):
    out[key]['oracle'] = np.asarray(getattr(res.oracle, key)).tolist()
  return out


def child_ours(a, methods):
  """Times our protocol cold, warm and per method; dumps the reference's
  inputs (data and the first ``a.ref_trials`` warm splits) to ``a.inputs``."""
  import jax  # pylint: disable=g-import-not-at-top

  from unirouter_jax.estimators import builtin  # pylint: disable=g-import-not-at-top
  from unirouter_jax.evaluation import protocol  # pylint: disable=g-import-not-at-top

  if a.cpu_devices > 1:
    jax.config.update('jax_num_cpu_devices', a.cpu_devices)
  from unirouter_jax.evaluation import sweep  # pylint: disable=g-import-not-at-top

  shape, trials, repeats = a.shape, a.trials, a.repeats
  data, cfg = _our_inputs(shape, trials, a.tuned)
  ests = builtin.builtin_estimators()
  chosen = {name: ests[name] for name in methods}
  key = jax.random.key(0)
  n, m = data.num_prompts, data.num_llms
  cold_sp = protocol.make_splits(key, n, m, cfg)
  warm_sp = protocol.make_splits(key, n, m, cfg, start=trials)

  def run(est, splits):
    if a.cpu_devices > 1:  # sharded over the CPU devices, as the CLI
      return lambda: sweep.run_sweep(key, data, est, cfg, splits=splits)
    return lambda: protocol.run_protocol(key, data, est, cfg, splits=splits)

  cold_s, _ = _timed(run(chosen, cold_sp))
  warm_s, res = _timed(run(chosen, warm_sp), repeats)
  rss = _rss_gb()
  _log(f'  ours {shape}: full set cold {cold_s:.1f} s, warm {warm_s:.1f} s')
  alone = {}
  for name, est in chosen.items() if not a.no_alone else ():
    alone_cold, _ = _timed(run({name: est}, cold_sp))
    alone_warm, _ = _timed(run({name: est}, warm_sp), repeats)
    alone[name] = {'cold_s': alone_cold, 'per_trial_s': alone_warm / trials}
    _log(
        f'  ours {shape}: {name} cold {alone_cold:.1f} s, warm'
        f' {alone_warm:.1f} s'
    )
  grids, _ = protocol.prepare(data, chosen, cfg)
  n_train, n_val, _, m_test = protocol.split_sizes(n, m, cfg)
  _dump_inputs(a.inputs, data, warm_sp, a.ref_trials, trials)
  return {
      'cold_s': cold_s,
      'warm_s': warm_s,
      'per_trial_s': warm_s / trials,
      'compile_share': (cold_s - warm_s) / cold_s,
      'peak_rss_gb': rss,
      'alone': alone,
      'sizes': dict(n=n, d=data.emb_nd.shape[1], m=m, m_test=m_test),
      'grids': {
          'kmeans': builtin.kmeans_k_grid(n_train, n_val).tolist(),
          'knn': builtin.knn_k_grid(n_train, n_val).tolist(),
          'learned_map': builtin.kmeans_k_grid(n_train, n_val, num=4).tolist(),
      },
      'config': dataclasses.asdict(cfg),
      'machine': machine(),
      **_metrics(res, grids),
  }


def _dump_inputs(path, data, splits, ref_trials, start):
  """Host copies of the data (NaN = missing label) and the shared splits."""
  quality = np.where(
      np.asarray(data.label_mask_nm), np.asarray(data.quality_nm), np.nan
  )
  fields = ('train_idx', 'val_idx', 'test_idx', 'train_llm_m', 'test_llm_m')
  np.savez(
      path,
      emb=np.asarray(data.emb_nd),
      quality=quality,
      cost=np.asarray(data.cost_nm, np.float64),
      trial_index=np.arange(start, start + ref_trials),
      **{f: np.asarray(getattr(splits, f))[:ref_trials] for f in fields},
  )


# ------------------------------------------------------------ reference ----


def child_ref(a, methods):
  """Times the reference on the dumped inputs, full set then each alone.

  The reference is imported here, so our side never loads scikit-learn.
  """
  import reference_trained as ref  # pylint: disable=g-import-not-at-top

  with np.load(a.inputs) as f:
    d = {k: f[k] for k in f.files}
  grids = json.loads(a.grids)
  d['kmeans_grid'], d['knn_grid'] = grids['kmeans'], grids['knn']
  d['learned_map_grid'] = grids['learned_map']
  trials = len(d['trial_index'])
  run_s, rows = ref.run(d, methods, a.repeats)
  rss = _rss_gb()
  _log(f'  reference: full set {run_s:.1f} s')
  alone = {}
  for name in methods if not a.no_alone else ():
    alone[name] = ref.run(d, (name,), a.repeats)[0] / trials
    _log(f'  reference: {name} {alone[name] * trials:.1f} s')
  out = {'run_s': run_s, 'per_trial_s': run_s / trials, 'peak_rss_gb': rss}
  out['alone'] = {name: {'per_trial_s': s} for name, s in alone.items()}
  for key in ('area', 'area50', 'qnc', 'selected', 'best_epoch', 'epochs_run'):
    out[key] = {
        name: [r[name][key] for r in rows]
        for name in rows[0]
        if key in rows[0][name]
    }
  return out


# --------------------------------------------------------------- driver ----


def _spawn(args):
  """Runs a child; its JSON, with the 1-minute load average before and
  after (other processes on the machine skew every timing)."""
  cmd = [sys.executable, os.path.abspath(__file__)] + args
  load = os.getloadavg()[0]
  out = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True)
  if out.returncode:
    raise RuntimeError(f'{" ".join(args)} failed (its stderr is above).')
  result = json.loads(out.stdout.strip().splitlines()[-1])
  result['load_avg'] = (load, os.getloadavg()[0])
  return result


def run_shape(shape, a, methods):
  """Both sides of one shape, each in its own subprocess."""
  common = ['--shape', shape, '--methods', ','.join(methods)]
  common += ['--repeats', str(a.repeats)] + (['--no-alone'] * a.no_alone)
  ref_trials = min(a.ref_trials, a.trials)
  with tempfile.TemporaryDirectory() as tmp:
    inputs = os.path.join(tmp, 'inputs.npz')
    ours = _spawn(
        ['--child', 'ours', '--trials', str(a.trials)]
        + ['--ref-trials', str(ref_trials), '--inputs', inputs]
        + common
        + (['--tuned'] if a.tuned else [])
        + ['--cpu-devices', str(a.cpu_devices)]
    )
    grids = json.dumps(ours['grids'])
    ref = _spawn(
        ['--child', 'ref', '--inputs', inputs, '--grids', grids] + common
    )
  return {
      'methods': list(methods),
      'ours': ours,
      'ref': ref,
      'ratio': ref['per_trial_s'] / ours['per_trial_s'],
  }


def _row(name, ours_s, ref_s, area_o, area_r):
  times = (
      f'{ours_s:10.3f} {ref_s:10.3f} {ref_s / ours_s:7.2f}x'
      if ours_s is not None
      else f'{"-":>10} {"-":>10} {"-":>8}'
  )
  mo, mr = float(np.mean(area_o)), float(np.mean(area_r))
  return f'{name:30s} {times}  {mo:9.4f} {mr:9.4f} {mo - mr:+9.4f}'


def print_table(shape, row):
  """Per-method and full-set times and mean Areas of one shape."""
  o, r = row['ours'], row['ref']
  ref_trials = len(r['area']['oracle'])
  sz = o['sizes']
  print(
      f'\n{shape}: {sz["n"]} prompts x {sz["d"]} dims, {sz["m"]} LLMs '
      f'({sz["m_test"]} test); ours {len(o["area"]["oracle"])} trials, '
      f'reference {ref_trials}; Area means over the {ref_trials} shared '
      'splits'
  )
  print(
      f'{"method":30s} {"ours s/tr":>10} {"ref s/tr":>10} {"ratio":>8}  '
      f'{"Area ours":>9} {"Area ref":>9} {"diff":>9}'
  )
  for name in row['methods']:
    ours_s = o['alone'].get(name, {}).get('per_trial_s')
    ref_s = r['alone'].get(name, {}).get('per_trial_s')
    area = (o['area'][name][:ref_trials], r['area'][name])
    print(_row(name, ours_s, ref_s, *area))
  area = (o['area']['oracle'][:ref_trials], r['area']['oracle'])
  print(_row('oracle', None, None, *area))
  print(
      f'{"full set":30s} {o["per_trial_s"]:10.3f} {r["per_trial_s"]:10.3f} '
      f'{row["ratio"]:7.2f}x'
  )


def print_notes(row):
  """Compile share, memory, machine load, and what each side selected."""
  o, r = row['ours'], row['ref']
  ref_trials = len(r['area']['oracle'])
  print(
      f'  ours: cold {o["cold_s"]:.1f} s, warm {o["warm_s"]:.1f} s, compile '
      f'share {100 * o["compile_share"]:.0f}%; peak RSS ours '
      f'{o["peak_rss_gb"]:.2f} GB, reference {r["peak_rss_gb"]:.2f} GB'
  )
  (o0, o1), (r0, r1) = o['load_avg'], r['load_avg']
  print(
      f'  1-min load average before/after: ours {o0:.1f}/{o1:.1f}, '
      f'reference {r0:.1f}/{r1:.1f}'
  )
  for name, sel in r['selected'].items():
    ours = o['selected'].get(name, ['-'])[:ref_trials]
    print(f'  selected k {name}: ours {ours} ref {sel}')
  for name, ran in r['epochs_run'].items():
    print(f'  reference {name}: best epoch {r["best_epoch"][name]}, ran {ran}')


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--shapes', default='routerbench,embedllm')
  ap.add_argument('--trials', type=int, default=16, help='our trials')
  ap.add_argument('--ref-trials', type=int, default=4)
  ap.add_argument('--methods', default=None, help='default: DEFAULT_METHODS')
  ap.add_argument(
      '--repeats', type=int, default=1, help='warm timings: fastest of N'
  )
  ap.add_argument(
      '--tuned', action='store_true', help='ours with sweep.tuned_config'
  )
  ap.add_argument(
      '--no-alone', action='store_true', help='skip the per-method timings'
  )
  ap.add_argument(
      '--cpu-devices',
      type=int,
      default=1,
      help=(
          'ours: trials sharded over this many CPU devices (the CLI runs one '
          'per core by default); the reference is one process'
      ),
  )
  ap.add_argument('--json', default=None, help='write results here')
  ap.add_argument('--child', choices=('ours', 'ref'), help=argparse.SUPPRESS)
  ap.add_argument('--shape', help=argparse.SUPPRESS)
  ap.add_argument('--inputs', help=argparse.SUPPRESS)
  ap.add_argument('--grids', help=argparse.SUPPRESS)
  a = ap.parse_args(argv)
  if a.methods:
    methods = tuple(a.methods.split(','))
  else:
    from unirouter_jax.shell import workdir  # pylint: disable=g-import-not-at-top

    methods = workdir.DEFAULT_METHODS
  if a.child:
    child = child_ours if a.child == 'ours' else child_ref
    print(json.dumps(child(a, methods)))
    return
  report = {}
  for shape in a.shapes.split(','):
    report[shape] = run_shape(shape, a, methods)
    print_table(shape, report[shape])
    print_notes(report[shape])
  print('machine:', json.dumps(next(iter(report.values()))['ours']['machine']))
  if a.json:
    with open(a.json, 'w') as f:
      json.dump(report, f, indent=1)


if __name__ == '__main__':
  main()
