"""Plots (shell/plots.py) and the psi heat-map order (report.py).

Properties on small planted data: the clustering order keeps each planted
block of LLMs contiguous; legends and heat-map ticks carry the full LLM
names; large heat-maps are stacked; every PNG is written atomically.
"""

import pathlib
import shutil
import tempfile

import matplotlib.legend
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.core.structs import RoutingData
from unirouter_jax.shell import plots, report

LONG = (
    'meta-llama/Llama-2-70b-chat-hf',
    'mistralai/Mixtral-8x7B-Instruct-v0.1',
    'NousResearch/Nous-Hermes-2-Mixtral-8x7B-DPO',
    'Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4-sft-v2',
    'claude-instant-v1',
)


def _blocks_contiguous(order, block_m) -> bool:
  """Every block's LLMs occupy consecutive positions of ``order``."""
  pos = np.empty(len(order), int)
  pos[np.asarray(order)] = np.arange(len(order))
  for b in np.unique(block_m):
    p = np.sort(pos[block_m == b])
    if p[-1] - p[0] + 1 != len(p):
      return False
  return True


def _planted_sim(rng, sizes):
  """``[m, m]`` similarity: ~0.8 within a block, ~-0.1 across, shuffled."""
  block = np.repeat(np.arange(len(sizes)), sizes)
  perm = rng.permutation(len(block))
  block = block[perm]
  same = block[:, None] == block[None, :]
  noise = rng.normal(0, 0.05, (len(block),) * 2)
  sim = np.where(same, 0.8, -0.1) + 0.5 * (noise + noise.T)
  np.fill_diagonal(sim, 1.0)
  return sim, block


def _summary(names, trials=4):
  rng = np.random.default_rng(0)
  grid = np.linspace(0, 1, 11)
  return {
      'dataset': 'toy',
      'trials': trials,
      'grid': grid.tolist(),
      'mean_curves': {
          'zero_router': (0.5 + 0.2 * grid).tolist(),
          'uniroute_kmeans': (0.5 + 0.3 * np.sqrt(grid)).tolist(),
      },
      'curve_bands': {
          'uniroute_kmeans': [
              (0.49 + 0.3 * np.sqrt(grid)).tolist(),
              (0.51 + 0.3 * np.sqrt(grid)).tolist(),
          ]
      },
      'single_llm_trials': {
          n: {
              'x': rng.uniform(0, 1, trials).tolist(),
              'quality': (
                  (0.5 + 0.01 * i + rng.uniform(0, 0.01, trials)).tolist()
              ),
          }
          for i, n in enumerate(names)
      },
      'hyperparameters': {
          'uniroute_kmeans': {
              'hp': 'k',
              'values': [2, 4, 8],
              'test_area_mean': [0.6, 0.62, 0.63],
              'test_area_std': [0.01, 0.01, 0.01],
          }
      },
  }


def _legend_texts(fig) -> list[str]:
  return [
      t.get_text()
      for leg in fig.findobj(matplotlib.legend.Legend)
      for t in leg.get_texts()
  ]


class SimilarityOrderTest(parameterized.TestCase):

  @parameterized.parameters(0, 1, 2)
  def test_planted_blocks_are_contiguous(self, seed):
    rng = np.random.default_rng(seed)
    sim, block = _planted_sim(rng, [5, 9, 3, 12, 7])
    order = report.similarity_order(sim)
    self.assertCountEqual(order.tolist(), range(len(block)))
    self.assertTrue(_blocks_contiguous(order, block), (order, block))

  def test_small_and_bad_inputs(self):
    np.testing.assert_array_equal(report.similarity_order(np.eye(2)), [0, 1])
    # Non-finite similarities count as unrelated; the order stays complete.
    sim = np.eye(4)
    sim[0, 1] = sim[1, 0] = np.nan
    self.assertCountEqual(report.similarity_order(sim).tolist(), range(4))
    with self.assertRaisesRegex(ValueError, 'sim_mm: expected a square'):
      report.similarity_order(np.ones((3, 4)))

  def test_psi_similarity_groups_planted_families(self):
    # 12 LLMs in 3 families; each family fails on its own clusters.
    rng = np.random.default_rng(0)
    n, k, fam = 600, 6, np.repeat(np.arange(3), 4)
    perm = rng.permutation(12)
    fam = fam[perm]
    centres = 5.0 * rng.normal(size=(k, 8))
    topic = rng.integers(0, k, n)
    emb = centres[topic] + 0.3 * rng.normal(size=(n, 8))
    weak = rng.normal(size=(3, k)) > 0  # clusters each family fails
    p = np.where(weak[fam][:, topic].T, 0.2, 0.9)
    quality = (rng.uniform(size=p.shape) < p).astype(np.float32)
    rd = RoutingData.create(emb, quality, np.linspace(1, 2, 12))
    cos_mm, corr_mm, order = report.psi_similarity(rd, k)
    self.assertEqual(cos_mm.shape, (12, 12))
    self.assertEqual(corr_mm.shape, (12, 12))
    self.assertTrue(_blocks_contiguous(order, fam), (order, fam))


class PlotsTest(parameterized.TestCase):

  def _tmp(self) -> pathlib.Path:
    d = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, d, ignore_errors=True)
    return pathlib.Path(d)

  def test_deferral_legend_has_full_names(self):
    path = self._tmp() / 'curves.png'
    fig = plots.deferral_curves(path, _summary(LONG))
    texts = _legend_texts(fig)
    # Named best-first; every name whole.
    self.assertEqual(texts[-len(LONG) :], list(reversed(LONG)))
    self.assertIn('UniRoute (K-means)', texts)

  def test_deferral_legend_names_the_best_and_counts_the_rest(self):
    names = [f'org-{i}/Some-Model-{i}-70b-chat-hf' for i in range(20)]
    path = self._tmp() / 'curves.png'
    texts = _legend_texts(plots.deferral_curves(path, _summary(names)))
    best = list(reversed(names))[:8]  # quality grows with the index
    self.assertEqual(texts[-9:], best + ['12 other single LLMs'])

  def test_area_vs_hp_and_val_size_legends(self):
    d = self._tmp()
    fig = plots.area_vs_hp(d / 'area.png', _summary(LONG))
    self.assertEqual(_legend_texts(fig), ['UniRoute (K-means)'])
    fig = plots.val_size_curve(
        d / 'val.png', [10, 20], {'knn': [0.5, 0.6]}, {'knn': [0.01, 0.01]}
    )
    self.assertEqual(_legend_texts(fig), ['K-NN'])

  @parameterized.parameters(5, 61)
  def test_heatmap_ticks_are_full_names_in_order(self, m):
    names = [f'{LONG[i % len(LONG)]}-{i}' for i in range(m)]
    rng = np.random.default_rng(m)
    sim, _ = _planted_sim(rng, [m - m // 2, m // 2])
    order = report.similarity_order(sim)
    tmp = self._tmp()
    fig = plots.psi_heatmap(
        tmp / 'psi.png', sim, sim, order, names, title='toy'
    )
    want = [names[i] for i in order]
    for ax in fig.axes[:2]:
      self.assertEqual([t.get_text() for t in ax.get_yticklabels()], want)
      self.assertEqual([t.get_text() for t in ax.get_xticklabels()], want)
    first, second = (ax.get_position() for ax in fig.axes[:2])
    stacked = m > plots.HEATMAP_STACK_AT
    # Side by side: same row, second to the right; stacked: second below.
    if stacked:
      self.assertLess(second.y1, first.y0 + 1e-6)
    else:
      self.assertGreater(second.x0, first.x1 - 1e-6)
    # Per-cell values only on small maps.
    self.assertEqual(bool(fig.axes[0].texts), m <= 16)
    # Written atomically: the PNG and nothing else.
    self.assertEqual([p.name for p in tmp.iterdir()], ['psi.png'])
    self.assertEqual((tmp / 'psi.png').read_bytes()[:4], b'\x89PNG')

  def test_heatmap_rejects_mismatched_names(self):
    with self.assertRaisesRegex(ValueError, r'cos_mm, corr_mm: expected \[3'):
      plots.psi_heatmap(
          self._tmp() / 'x.png',
          np.eye(2),
          np.eye(2),
          [0, 1],
          ['a', 'b', 'c'],
      )


if __name__ == '__main__':
  absltest.main()
