"""Figures for reviewing the plots by eye at 11, 50, 53 and 110 LLMs.

  .venv/bin/python benchmarks/plot_review.py [--out docs/figures]

Writes, without running the protocol (a minute on 2 CPU cores):

* ``psi_heatmap_11.png``: the bundled RouterBench subset (11 LLMs, bundled
  MiniLM embeddings), through ``report.psi_similarity`` as a run makes it.
* ``psi_heatmap_alpacaeval_v1_50.png``: bundled AlpacaEval 1 (50 LLMs).
* ``psi_heatmap_53.png``, ``psi_heatmap_110.png``: synthetic data with
  planted LLM families (names of realistic length such as
  ``meta-llama/Llama-2-70b-chat-hf``) through the same function; a good
  order puts each family in one block.
* ``deferral_curves_{11,53,110}.png`` and ``area_vs_k_{11,53}.png``: from
  a ``summary.json``-shaped dict with made-up curves and single-LLM points
  (for the RouterBench subset at the LLMs' real mean quality and cost).
"""

import argparse
import pathlib

import jax
import numpy as np

from unirouter_jax import data, encoder
from unirouter_jax.core.structs import RoutingData
from unirouter_jax.shell import plots, report

_METHODS = (
    'zero_router',
    'knn',
    'uniroute_kmeans',
    'uniroute_learned_map',
    'mlp_oracle',
    'oracle',
)
_FAMILIES = (
    ('meta-llama/Llama-2-{}b-chat-hf', ('7', '13', '70')),
    ('meta-llama/Meta-Llama-3.1-{}B-Instruct', ('8', '70', '405')),
    ('mistralai/Mistral-7B-Instruct-v0.{}', ('1', '2', '3')),
    ('mistralai/Mixtral-8x{}B-Instruct-v0.1', ('7', '22')),
    ('Qwen/Qwen2.5-{}B-Instruct', ('0.5', '1.5', '3', '7', '14', '32', '72')),
    ('google/gemma-2-{}b-it', ('2', '9', '27')),
    ('microsoft/Phi-3-{}-instruct', ('mini-4k', 'mini-128k', 'medium-4k')),
    ('deepseek-ai/deepseek-llm-{}b-chat', ('7', '67')),
    ('tiiuae/falcon-{}b-instruct', ('7', '40', '180')),
    ('01-ai/Yi-1.5-{}B-Chat', ('6', '9', '34')),
    ('lmsys/vicuna-{}-v1.5', ('7b', '13b', '7b-16k', '13b-16k')),
    ('HuggingFaceH4/zephyr-7b-{}', ('alpha', 'beta', 'gemma-v0.1')),
    ('NousResearch/Nous-Hermes-2-{}', ('Mixtral-8x7B-DPO', 'Yi-34B')),
    ('allenai/OLMo-2-1124-{}B-Instruct', ('7', '13')),
    ('openai/gpt-{}', ('3.5-turbo-1106', '4-1106-preview', '4o-2024-08-06')),
    ('anthropic/claude-3-{}', ('haiku-20240307', '5-sonnet-20241022')),
)


def _names(m: int) -> tuple[list[str], list[int]]:
  """``m`` distinct realistic LLM names and their family index.

  Families are filled round-robin with fine-tunes (``-dpo``, ``-awq`` ...)
  once their plain members run out, so every family has several members.
  """
  names, fams = [], []
  suffixes = ('', '-dpo', '-AWQ', '-GPTQ-4bit', '-sft-v2')
  for suffix in suffixes:
    for f, (pattern, sizes) in enumerate(_FAMILIES):
      for size in sizes:
        if len(names) < m:
          names.append(pattern.format(size) + suffix)
          fams.append(f)
  return names, fams


def _planted(key, m: int, n: int = 3000, clusters: int = 24):
  """Synthetic routing data whose LLMs share an error profile per family."""
  names, fams = _names(m)
  k_c, k_t, k_e, k_f, k_l, k_q = jax.random.split(key, 6)
  centre_cd = 3.0 * jax.random.normal(k_c, (clusters, 16))
  topic_n = jax.random.randint(k_t, (n,), 0, clusters)
  emb = centre_cd[topic_n] + jax.random.normal(k_e, (n, 16))
  fam_profile = jax.random.normal(k_f, (len(_FAMILIES), clusters))
  llm_profile = fam_profile[np.asarray(fams)] + 0.3 * jax.random.normal(
      k_l, (m, clusters)
  )
  skill = np.linspace(-0.5, 1.0, m)[:, None]
  p_nm = jax.nn.sigmoid(skill + llm_profile).T[topic_n]
  quality = jax.random.bernoulli(k_q, p_nm).astype(np.float32)
  cost = np.geomspace(1e-4, 5e-3, m)
  return RoutingData.create(emb, quality, cost, llm_names=names)


def _summary(rng, dataset: str, quality_m, cost_m, trials: int = 30):
  """A ``report.build_summary``-shaped dict with made-up router curves and
  single LLMs at ``quality_m`` / ``cost_m`` in random half pools."""
  names = list(quality_m)
  m = len(names)
  grid = np.linspace(0.0, 1.0, 101)
  q = np.asarray(list(quality_m.values()))
  c = np.asarray(list(cost_m.values()))
  lo, hi = float(q.min()), float(q.max())
  curves, bands, hp = {}, {}, {}
  for i, name in enumerate(_METHODS):
    gain = 0.6 + 0.12 * i
    curve = lo + (hi - lo) * (1.0 - np.exp(-4.0 * gain * grid))
    curve = np.minimum(curve * (1.0 + 0.004 * i), 1.0)
    curves[name] = curve.tolist()
    bands[name] = [(curve - 0.01).tolist(), (curve + 0.01).tolist()]
    if name in ('knn', 'uniroute_kmeans', 'uniroute_learned_map'):
      ks = [2, 4, 8, 16, 32, 64]
      area = [float(np.mean(curve)) - 0.02 / np.log2(1 + k) for k in ks]
      hp[name] = {
          'hp': 'k',
          'values': ks,
          'test_area_mean': area,
          'test_area_std': [0.02] * len(ks),
          'selected_count': (
              rng.multinomial(
                  trials,
                  np.linspace(1, 3, len(ks)) / np.linspace(1, 3, 6).sum(),
              ).tolist()
          ),
      }
  positions = {name: {'x': [], 'quality': []} for name in names}
  for _ in range(trials):
    pool = rng.choice(m, size=max(2, m // 2), replace=False)
    cmin, cmax = c[pool].min(), c[pool].max()
    for j in pool:
      x = (c[j] - cmin) / max(cmax - cmin, 1e-12)
      positions[names[j]]['x'].append(float(x))
      positions[names[j]]['quality'].append(float(q[j] + rng.normal(0, 0.01)))
  return {
      'dataset': dataset,
      'trials': trials,
      'llms': names,
      'grid': grid.tolist(),
      'mean_curves': curves,
      'curve_bands': bands,
      'single_llm_trials': positions,
      'hyperparameters': hp,
  }


def _bundled(name: str):
  ds = data.load(name)
  emb = encoder.bundled_embeddings(ds)
  return ds, RoutingData.create(
      emb, ds.quality_nm, ds.cost_nm, ds.label_mask_nm, ds.llm_names
  )


def _heatmap(out, tag, rd, title, k=16):
  cos_mm, corr_mm, order = report.psi_similarity(rd, k)
  plots.psi_heatmap(
      out / f'psi_heatmap_{tag}.png',
      cos_mm,
      corr_mm,
      order,
      list(rd.llm_names),
      title=f'{title}: psi similarity (K = {k})',
  )
  return order


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='docs/figures')
  args = parser.parse_args()
  out = pathlib.Path(args.out)
  rng = np.random.default_rng(0)

  ds, rd = _bundled('routerbench_subset')
  _heatmap(out, '11', rd, 'RouterBench subset (11 LLMs)')
  labelled = np.asarray(ds.label_mask_nm)
  quality = np.where(labelled, np.asarray(ds.quality_nm), 0.0).sum(0)
  quality = quality / labelled.sum(0)
  cost = np.asarray(ds.cost_nm).reshape(-1, ds.num_llms).mean(0)
  s = _summary(
      rng,
      'routerbench_subset (11 LLMs, made-up curves)',
      dict(zip(ds.llm_names, quality, strict=True)),
      dict(zip(ds.llm_names, cost, strict=True)),
  )
  plots.deferral_curves(out / 'deferral_curves_11.png', s)
  plots.area_vs_hp(out / 'area_vs_k_11.png', s)

  _, rd = _bundled('alpacaeval_v1')
  _heatmap(out, 'alpacaeval_v1_50', rd, 'AlpacaEval 1 (50 LLMs)')

  for m in (53, 110):
    rd = _planted(jax.random.key(m), m)
    _heatmap(out, str(m), rd, f'synthetic, {m} LLMs in planted families')
    names = list(rd.llm_names)
    q = np.linspace(0.45, 0.9, m) + rng.normal(0, 0.02, m)
    c = np.geomspace(1e-4, 5e-3, m)
    s = _summary(
        rng,
        f'synthetic ({m} LLMs)',
        dict(zip(names, q, strict=True)),
        dict(zip(names, c, strict=True)),
    )
    plots.deferral_curves(out / f'deferral_curves_{m}.png', s)
    if m == 53:
      plots.area_vs_hp(out / 'area_vs_k_53.png', s)
  for png in sorted(out.glob('*.png')):
    print(f'{png}: {png.stat().st_size / 1024:.0f} KiB')


if __name__ == '__main__':
  main()
