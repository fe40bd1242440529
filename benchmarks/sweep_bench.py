"""The K-means protocol: our one-program sweep vs scikit-learn + NumPy.

    python benchmarks/sweep_bench.py            # both shapes, 400 trials
    python benchmarks/sweep_bench.py --quick    # a few trials, for CI / a GPU
    python benchmarks/sweep_bench.py --trials 16 --ref-trials 4

Both sides run the same protocol (method.md 2.1, 2.4, 3) on the same splits:
for every K of a fixed grid, K-means on the training prompts (k-means++,
``n_init`` restarts, the same ``tol`` and ``max_iter``); ``psi`` of the
training LLMs from the training set to route the validation prompts (the
selection view, Area picks K); ``psi`` from the validation prompts to route
the test prompts among the test LLMs over the same lambda grid; upper
envelope and Area. The reference is scikit-learn's ``KMeans`` plus
vectorised NumPy (what a careful peer implementation does); ours is
``sweep.run_sweep`` with ``sweep.tuned_config``. The two Areas must agree
within noise (K-means local optima differ: scikit-learn seeds greedily).

Data: synthetic clustered embeddings of the RouterBench-subset shape (3,176
prompts x 384 dims, 11 LLMs, 50/50 LLM split) and the EmbedLLM shape
(36,054 x 768, 112 LLMs, 1/3 unseen); prompts 60/10/30. Each side of each
shape runs in its own subprocess, so ``ru_maxrss`` is that configuration's
peak host memory (on a GPU the device's peak is read from jax too).
Timings: compile (ahead of time) and run separately; per trial = run time /
trials. Results go to stdout as a table and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from machine import machine

SHAPES = {
    # name: (n, d, m, test_llm_fraction, K grid)
    'routerbench': (3176, 384, 11, 0.5, (6, 8)),
    'embedllm': (36054, 768, 112, 1 / 3, (40, 50)),
}
N_INIT, TOL, MAX_ITER = 3, 1e-4, 100
NUM_LAMBDAS, GRID_POINTS = 200, 101


def synthetic(n, d, m, seed=0, blobs=40):
  """Clustered unit-norm embeddings; accuracies per blob; per-prompt costs."""
  rng = np.random.default_rng(seed)
  c_bd = rng.normal(size=(blobs, d)).astype(np.float32)
  c_bd /= np.linalg.norm(c_bd, axis=1, keepdims=True)
  z_n = rng.integers(0, blobs, size=n)
  emb = c_bd[z_n] + (0.6 / np.sqrt(d)) * rng.normal(size=(n, d)).astype(
      np.float32
  )
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  acc_bm = rng.uniform(0.1, 0.95, size=(blobs, m))
  quality = (rng.uniform(size=(n, m)) < acc_bm[z_n]).astype(np.float32)
  cost_m = np.geomspace(0.01, 1.0, m)[rng.permutation(m)]
  cost = (cost_m[None] * rng.uniform(0.5, 1.5, size=(n, m))).astype(np.float32)
  return emb.astype(np.float32), quality, cost


def _config(shape, trials):
  from unirouter_jax.evaluation import protocol  # pylint: disable=g-import-not-at-top

  _, _, _, frac, _ = SHAPES[shape]
  return protocol.ProtocolConfig(
      num_trials=trials,
      test_llm_fraction=frac,
      num_lambdas=NUM_LAMBDAS,
      grid_points=GRID_POINTS,
  )


def _splits(shape, trials):
  import jax  # pylint: disable=g-import-not-at-top

  from unirouter_jax.evaluation import protocol  # pylint: disable=g-import-not-at-top

  n, _, m, _, _ = SHAPES[shape]
  cfg = _config(shape, trials)
  return protocol.make_splits(jax.random.key(0), n, m, cfg), cfg


# ----------------------------------------------------------------- ours ----


def child_jax(shape, trials, flop_trials):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from unirouter_jax.core import kmeans  # pylint: disable=g-import-not-at-top
  from unirouter_jax.core.structs import RoutingData  # pylint: disable=g-import-not-at-top
  from unirouter_jax.estimators import builtin as methods  # pylint: disable=g-import-not-at-top
  from unirouter_jax.evaluation import sweep  # pylint: disable=g-import-not-at-top

  n, d, m, _, ks = SHAPES[shape]
  emb, quality, cost = synthetic(n, d, m)
  data = RoutingData.create(emb, quality, cost)
  splits, cfg = _splits(shape, trials)
  cfg = sweep.tuned_config(cfg)
  est = {'uniroute_kmeans': methods.uniroute_kmeans(n_init=N_INIT)}
  grids = {'uniroute_kmeans': {'k': np.asarray(ks)}}
  prog = sweep.prepare_sweep(None, data, est, cfg, grids, splits)
  t0 = time.perf_counter()
  compiled = prog.fn.lower(prog.splits, prog.data).compile()
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  out = jax.block_until_ready(compiled(prog.splits, prog.data))
  run_s = time.perf_counter() - t0
  res = out.methods['uniroute_kmeans']
  area = np.asarray(res.metrics.area)[:trials]
  selected = np.asarray(ks)[np.asarray(res.selected)[:trials]]

  # K-means alone on a few trials, to count the FLOPs it executes.
  k_max = max(ks)
  w_sn = (
      jnp.zeros((flop_trials, n))
      .at[jnp.arange(flop_trials)[:, None], splits.train_idx[:flop_trials]]
      .set(1.0)
  )

  @jax.jit
  def km(keys, w_sn):
    def one(args):
      key, w_n = args
      return jax.lax.map(
          lambda k: kmeans.kmeans(
              key, data.emb_nd, w_n, k, k_max=k_max, n_init=N_INIT, tol=TOL
          ).n_iter,
          jnp.asarray(ks),
      )

    return jax.lax.map(one, (keys, w_sn))

  keys = splits.key[:flop_trials]
  jax.block_until_ready(km(keys, w_sn))
  t0 = time.perf_counter()
  n_iter = np.asarray(jax.block_until_ready(km(keys, w_sn)))
  km_s = time.perf_counter() - t0
  # n_iter is of the best restart; the others ran about as many. Per Lloyd
  # step: distances 2 n k d (every prompt, mask-weighted) + update n d;
  # plus the final inertia pass and k-means++ (2 n d per centre).
  per_run = (n_iter.astype(np.float64) + 1) * (
      2 * n * k_max * d + n * d
  ) + 2 * n * d * k_max
  flops = float(per_run.sum()) * N_INIT
  dev = jax.devices()[0]
  stats = dev.memory_stats() if hasattr(dev, 'memory_stats') else None
  return {
      'compile_s': compile_s,
      'run_s': run_s,
      'per_trial_s': run_s / trials,
      'area': area.tolist(),
      'selected_k': selected.tolist(),
      'kmeans_flops_per_s': flops / km_s,
      'kmeans_mean_iter': float(n_iter.mean()),
      'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
      'device_peak_gb': (stats or {}).get('peak_bytes_in_use', 0) / 2**30,
      'config': {
          'trial_batch_size': cfg.trial_batch_size,
          'grid_batch_size': cfg.grid_batch_size,
      },
      'machine': machine(),
  }


# ------------------------------------------------------------ reference ----


def _envelope_area(x_p, y_p):
  """Area under the upper concave envelope on [0, 1] (flat ends), NumPy."""
  order = np.lexsort((-y_p, x_p))
  xs, ys = x_p[order], y_p[order]
  keep = np.concatenate([[True], xs[1:] != xs[:-1]])
  xs, ys = xs[keep], ys[keep]
  top = int(np.argmax(ys))
  xs, ys = xs[: top + 1], ys[: top + 1]
  hx, hy = [], []
  for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
    while (
        len(hx) >= 2
        and (hx[-1] - hx[-2]) * (y - hy[-2]) - (hy[-1] - hy[-2]) * (x - hx[-2])
        >= 0
    ):
      hx.pop()
      hy.pop()
    hx.append(x)
    hy.append(y)
  hx, hy = np.asarray(hx), np.asarray(hy)
  t = np.concatenate([[0.0], np.clip(hx, 0.0, 1.0), [1.0]])
  f = np.interp(t, hx, hy)
  return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(t)))


def _psi(assign_v, err_vm, vis_vm, k):
  """``[k, m]`` per-cluster mean visible error; global error where empty."""
  cnt_km = np.zeros((k, err_vm.shape[1]))
  sum_km = np.zeros((k, err_vm.shape[1]))
  np.add.at(cnt_km, assign_v, vis_vm)
  np.add.at(sum_km, assign_v, np.where(vis_vm, err_vm, 0.0))
  tot = cnt_km.sum(0)
  glob = np.where(tot > 0, sum_km.sum(0) / np.maximum(tot, 1), 0.5)
  return np.where(cnt_km > 0, sum_km / np.maximum(cnt_km, 1), glob[None])


def _area(psi_km, assign_q, quality_qm, cost_qm, pool_m, rule_cost_m, lam_l):
  """Routes the query prompts over ``lam_l``; Area of the deferral curve."""
  pool = np.flatnonzero(pool_m)
  gamma_qp = psi_km[assign_q][:, pool]
  c_p = rule_cost_m[pool]
  span = c_p.max() - c_p.min()
  lam_l = lam_l / (span if span > 0 else 1.0)
  choice_lq = np.argmin(
      gamma_qp[None] + lam_l[:, None, None] * c_p[None, None], axis=-1
  )
  q_qp, c_qp = quality_qm[:, pool], cost_qm[:, pool]
  rows = np.arange(len(assign_q))[None]
  cost_l = c_qp[rows, choice_lq].mean(1)
  quality_l = q_qp[rows, choice_lq].mean(1)
  mean_c = c_qp.mean(0)
  lo, hi = mean_c.min(), mean_c.max()
  x_l = (cost_l - lo) / (hi - lo) if hi > lo else np.zeros_like(cost_l)
  return _envelope_area(x_l, quality_l)


def child_ref(shape, trials):
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top

  n, d, m, _, ks = SHAPES[shape]
  emb, quality, cost = synthetic(n, d, m)
  error = 1.0 - quality
  splits, _ = _splits(shape, trials)
  tr_s, va_s, te_s = (
      np.asarray(splits.train_idx),
      np.asarray(splits.val_idx),
      np.asarray(splits.test_idx),
  )
  trl_s, tel_s = np.asarray(splits.train_llm_m), np.asarray(splits.test_llm_m)
  lam_l = np.concatenate([[0.0], np.geomspace(1e-4, 1e4, NUM_LAMBDAS - 1)])
  areas, selected, km_s = [], [], 0.0
  t0 = time.perf_counter()
  for s in range(trials):
    tr, va, te, trl, tel = tr_s[s], va_s[s], te_s[s], trl_s[s], tel_s[s]
    best = (-np.inf, None, None)
    for k in ks:
      t1 = time.perf_counter()
      km = KMeans(
          n_clusters=k,
          n_init=N_INIT,
          tol=TOL,
          max_iter=MAX_ITER,
          random_state=s,
      ).fit(emb[tr])
      a_tr = km.labels_
      a_va, a_te = km.predict(emb[va]), km.predict(emb[te])
      km_s += time.perf_counter() - t1
      # Selection view: psi of training LLMs on the training set; route the
      # validation prompts among the training LLMs.
      vis_tr = np.broadcast_to(trl[None], (len(tr), m))
      psi_sel = _psi(a_tr, error[tr], vis_tr, k)
      val_area = _area(
          psi_sel, a_va, quality[va], cost[va], trl, cost[tr].mean(0), lam_l
      )
      if val_area > best[0]:
        # Test view: psi of every LLM on the validation prompts.
        vis_va = np.ones((len(va), m), bool)
        psi = _psi(a_va, error[va], vis_va, k)
        test_area = _area(
            psi, a_te, quality[te], cost[te], tel, cost[va].mean(0), lam_l
        )
        best = (val_area, k, test_area)
    selected.append(best[1])
    areas.append(best[2])
  run_s = time.perf_counter() - t0
  return {
      'run_s': run_s,
      'per_trial_s': run_s / trials,
      'kmeans_share': km_s / run_s,
      'area': areas,
      'selected_k': selected,
      'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
  }


# --------------------------------------------------------------- driver ----


def _spawn(args):
  cmd = [sys.executable, os.path.abspath(__file__)] + args
  out = subprocess.run(cmd, check=False, capture_output=True, text=True)
  if out.returncode:
    raise RuntimeError(f'{" ".join(args)} failed:\n{out.stderr[-3000:]}')
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--quick', action='store_true', help='4 trials, ref 2')
  ap.add_argument('--trials', type=int, default=None, help='our trials')
  ap.add_argument('--ref-trials', type=int, default=None)
  ap.add_argument('--shapes', default='routerbench,embedllm')
  ap.add_argument('--no-ref', action='store_true')
  ap.add_argument('--json', default=None, help='write results here')
  ap.add_argument('--child', choices=('jax', 'ref'), help=argparse.SUPPRESS)
  ap.add_argument('--shape', help=argparse.SUPPRESS)
  ap.add_argument('--flop-trials', type=int, default=2, help=argparse.SUPPRESS)
  a = ap.parse_args(argv)
  trials = a.trials or (4 if a.quick else 400)
  if a.child == 'jax':
    print(json.dumps(child_jax(a.shape, trials, min(a.flop_trials, trials))))
    return
  if a.child == 'ref':
    print(json.dumps(child_ref(a.shape, trials)))
    return
  ref_trials = min(a.ref_trials or (2 if a.quick else 8), trials)
  report = {}
  for shape in a.shapes.split(','):
    ours = _spawn(['--child', 'jax', '--shape', shape, '--trials', str(trials)])
    row = {'ours': ours}
    if not a.no_ref:
      ref = _spawn(
          ['--child', 'ref', '--shape', shape, '--trials', str(ref_trials)]
      )
      diff = np.asarray(ours['area'][:ref_trials]) - np.asarray(ref['area'])
      se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
      row.update(
          ref=ref,
          speedup=ref['per_trial_s'] / ours['per_trial_s'],
          area_diff_mean=float(diff.mean()),
          area_diff_max=float(np.abs(diff).max()),
          areas_agree=bool(abs(diff.mean()) <= max(3 * se, 2e-3)),
      )
    report[shape] = row
    _print_row(shape, trials, ref_trials, row)
  mach = next(iter(report.values()))['ours']['machine']
  print('machine:', json.dumps(mach))
  if a.json:
    with open(a.json, 'w') as f:
      json.dump(report, f, indent=1)


def _print_row(shape, trials, ref_trials, row):
  o = row['ours']
  print(
      f'{shape}: ours {o["per_trial_s"] * 1e3:.1f} ms/trial over {trials} '
      f'trials (compile {o["compile_s"]:.1f} s, K-means '
      f'{o["kmeans_flops_per_s"] / 1e9:.1f} GFLOP/s at '
      f'{o["kmeans_mean_iter"]:.1f} Lloyd steps, peak RSS '
      f'{o["peak_rss_gb"]:.2f} GB, device peak {o["device_peak_gb"]:.2f} GB, '
      f'batching {o["config"]})'
  )
  if 'ref' in row:
    r = row['ref']
    print(
        f'  reference (scikit-learn + NumPy) {r["per_trial_s"] * 1e3:.1f} '
        f'ms/trial over {ref_trials} trials (K-means '
        f'{100 * r["kmeans_share"]:.0f}% of it, peak RSS '
        f'{r["peak_rss_gb"]:.2f} GB)\n'
        f'  speedup {row["speedup"]:.2f}x; Area ours - ref: mean '
        f'{row["area_diff_mean"]:+.4f}, max |.| {row["area_diff_max"]:.4f} '
        f'-> agree: {row["areas_agree"]}; selected K ours '
        f'{o["selected_k"][:ref_trials]} ref {r["selected_k"]}'
    )


if __name__ == '__main__':
  main()
