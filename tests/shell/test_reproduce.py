"""End-to-end ``experiments/reproduce.py`` on a ``:tiny`` config, and resume.

The data is a small synthetic wide CSV with a ``.npy`` of embeddings, so no
encoder is needed; methods are restricted to two cheap ones to keep the
compile time of the test in seconds (every method is compiled by the
protocol's own tests).
"""

import json
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import pandas as pd
from absl.testing import absltest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from configs import default  # noqa: E402
from experiments import reproduce  # noqa: E402

METHODS = ('zero_router', 'uniroute_kmeans')


def write_wide_csv(folder, n=160, m=6, d=8, seed=0):
  """A wide CSV with per-prompt costs, and matching random embeddings."""
  rng = np.random.default_rng(seed)
  emb = rng.normal(size=(n, d)).astype(np.float32)
  df = pd.DataFrame({'prompt': [f'question {i}?' for i in range(n)]})
  for j in range(m):
    p = 1 / (1 + np.exp(-(2 * emb[:, j % d] + 0.3 * j - 0.5)))
    df[f'llm{j}'] = (rng.random(n) < p).astype(float)
    df[f'llm{j}|total_cost'] = 1e-3 * (j + 1) * (1 + 0.1 * rng.random(n))
  csv, npy = os.path.join(folder, 'wide.csv'), os.path.join(folder, 'e.npy')
  df.to_csv(csv, index=False)
  np.save(npy, emb)
  return csv, npy


def tiny_config(csv, npy, **protocol):
  config = default.get_config('tiny')
  with config.unlocked():
    config.data.name = csv
    config.data.embeddings = npy
    config.methods = METHODS
    config.output.plots = True
    for k, v in protocol.items():
      config.protocol[k] = v
  return config


def _tempdir(test):
  # absltest's create_tempdir needs parsed absl flags, which pytest skips.
  path = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


class ReproduceTest(absltest.TestCase):

  def test_end_to_end_then_resume(self):
    tmp = _tempdir(self)
    csv, npy = write_wide_csv(tmp)
    wd = pathlib.Path(tmp, 'run')
    config = tiny_config(csv, npy)
    logs = []
    (first,) = reproduce.run(config, wd, log=logs.append)

    # Files of a self-describing workdir.
    for name in (
        'config.json',
        'metrics.jsonl',
        'summary.json',
        'results.md',
        'plots/deferral_curves.png',
        'plots/area_vs_k.png',
        'plots/psi_similarity.png',
    ):
      self.assertTrue((wd / name).exists(), name)
    summary = json.loads((wd / 'summary.json').read_text())
    self.assertEqual(summary['trials'], config.protocol.num_trials)
    self.assertEqual(set(summary['methods']), {*METHODS, 'oracle'})
    for row in summary['methods'].values():
      self.assertTrue(np.isfinite(row['area']) and np.isfinite(row['area50']))
      self.assertTrue(row['qnc'] == 'inf' or np.isfinite(row['qnc']))
    records = [
        json.loads(x) for x in (wd / 'metrics.jsonl').read_text().splitlines()
    ]
    self.assertLen(records, config.protocol.num_trials * (len(METHODS) + 1))
    self.assertIn('| UniRoute (K-means) |', (wd / 'results.md').read_text())
    self.assertTrue(any('Plots:' in s for s in logs))
    self.assertEqual(first['chunks_computed_this_run'], 2)

    # Resume: a rerun computes only the missing chunk, and agrees.
    chunk0, chunk1 = wd / 'chunks/chunk_0000.npz', wd / 'chunks/chunk_0001.npz'
    mtime0 = chunk0.stat().st_mtime_ns
    chunk1.unlink()
    (second,) = reproduce.run(config, wd, log=logs.append)
    self.assertEqual(second['chunks_computed_this_run'], 1)
    self.assertEqual(chunk0.stat().st_mtime_ns, mtime0)
    for name in first['methods']:
      # Same splits and keys: equal up to float32 reduction order (1e-6).
      self.assertAlmostEqual(
          first['methods'][name]['area'],
          second['methods'][name]['area'],
          delta=1e-6,
      )
    records = [
        json.loads(x) for x in (wd / 'metrics.jsonl').read_text().splitlines()
    ]
    self.assertLen(records, config.protocol.num_trials * (len(METHODS) + 1))

    # A rerun with nothing missing computes nothing.
    (third,) = reproduce.run(config, wd, log=logs.append)
    self.assertEqual(third['chunks_computed_this_run'], 0)

    # Another configuration in the same workdir is refused.
    other = tiny_config(csv, npy, seed=1)
    with self.assertRaisesRegex(ValueError, 'another configuration.*seed'):
      reproduce.run(other, wd, log=logs.append)


if __name__ == '__main__':
  absltest.main()
