"""Does shrinking psi toward each LLM's global error help small probe sets?

  .venv/bin/python benchmarks/shrinkage_study.py [--trials 20] [--k 8]

For every bundled dataset with bundled MiniLM embeddings and every probe size
N_val, each trial splits the LLMs (2/3 training, 1/3 unseen test) and the
prompts (N_val probe, 30% test, the rest training), fits K-means on the
training prompts and compares the test Area (method.md 3) of UniRoute
(K-means) with the paper's psi (strength 0) against the shrunk psi, whose
strength is selected per trial on validation data with training LLMs only:
psi of the training LLMs from the probe set, routing the training prompts
among the training LLMs (labels never used for the test LLMs' selection).
Prints mean Area of both, the mean paired difference with 2 standard errors
and the share of trials where shrinkage wins (ties excluded).
"""

import argparse

import jax
import numpy as np

from unirouter_jax import data, encoder
from unirouter_jax.core import kmeans
from unirouter_jax.deploy import calibration
from unirouter_jax.deploy import router as router_lib


def _router(clustering, emb, ds, probe, llms, cost_m):
  q = np.asarray(ds.quality_nm)[np.ix_(probe, llms)]
  mask = np.asarray(ds.label_mask_nm)[np.ix_(probe, llms)]
  return router_lib.from_clustering(
      clustering,
      emb[probe],
      q,
      mask,
      cost_m[llms],
      [ds.llm_names[i] for i in llms],
      probe_ids=[str(i) for i in probe],
      probe_texts=[''] * len(probe),
      trim=False,
  )


def _areas(router, emb, ds, idx, llms, strengths):
  return calibration.select_shrinkage(
      router,
      emb[idx],
      np.asarray(ds.quality_nm)[np.ix_(idx, llms)],
      np.asarray(ds.label_mask_nm)[np.ix_(idx, llms)],
      np.asarray(ds.cost_nm)[np.ix_(idx, llms)],
      strengths=strengths,
  )


def study(ds, emb, n_val, trials, k, strengths, seed=0):
  n, m = ds.num_prompts, ds.num_llms
  n_test = int(0.3 * n)
  rng = np.random.default_rng(seed)
  out = []
  for t in range(trials):
    perm = rng.permutation(n)
    probe, test, train = (
        perm[:n_val],
        perm[n_val : n_val + n_test],
        perm[n_val + n_test :],
    )
    llm_perm = rng.permutation(m)
    test_llms = np.sort(llm_perm[: max(1, round(m / 3))])
    train_llms = np.sort(llm_perm[max(1, round(m / 3)) :])
    mask = np.asarray(ds.label_mask_nm)
    cost_m = np.where(mask[probe], ds.cost_nm[probe], 0).sum(0) / np.maximum(
        mask[probe].sum(0), 1
    )
    w = np.zeros((n,), np.float32)
    w[train] = 1.0
    clustering = kmeans.kmeans(
        jax.random.key(seed * 1000 + t), emb, w, k, k_max=k
    )
    sel = _router(clustering, emb, ds, probe, train_llms, cost_m)
    best, _ = _areas(sel, emb, ds, train, train_llms, strengths)
    ev = _router(clustering, emb, ds, probe, test_llms, cost_m)
    _, area = _areas(ev, emb, ds, test, test_llms, (0.0, best))
    out.append((area[0], area[1], best))
  return np.asarray(out)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--trials', type=int, default=20)
  ap.add_argument('--k', type=int, default=8)
  ap.add_argument(
      '--n-val', type=int, nargs='*', default=(50, 100, 200, 300, 400, 500)
  )
  args = ap.parse_args()
  strengths = calibration.DEFAULT_STRENGTHS
  print(
      '| dataset | N_val | Area (paper psi) | Area (shrunk) | diff +- 2se '
      '| shrunk wins | median strength |'
  )
  print('|---|---|---|---|---|---|---|')
  for name in data.BUNDLED:
    ds = data.load(name)
    try:
      emb = encoder.bundled_embeddings(ds)
    except (FileNotFoundError, ValueError):
      continue
    for n_val in args.n_val:
      if n_val + int(0.3 * ds.num_prompts) + 2 * args.k > ds.num_prompts:
        continue
      r = study(ds, emb, n_val, args.trials, args.k, strengths)
      d = r[:, 1] - r[:, 0]
      se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
      wins = (d > 0).sum() / max((d != 0).sum(), 1)
      print(
          f'| {name} | {n_val} | {r[:, 0].mean():.4f} | {r[:, 1].mean():.4f}'
          f' | {d.mean():+.4f} +- {2 * se:.4f} | {wins:.0%} '
          f'| {np.median(r[:, 2]):g} |',
          flush=True,
      )


if __name__ == '__main__':
  main()
