"""``unirouter evaluate`` end to end, and one-line errors on bad input."""

import contextlib
import io
import json
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import pandas as pd
from absl.testing import absltest, parameterized

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from unirouter_jax.shell import cli  # noqa: E402


def write_wide_csv(folder, n=150, m=6, d=8, seed=0):
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


def run_main(argv):
  """``(exit status, stdout, stderr)`` of ``cli.main(argv)``."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      status = cli.main(argv)
    except SystemExit as e:
      status = e.code
  return status, out.getvalue(), err.getvalue()


def _tempdir(test):
  # absltest's create_tempdir needs parsed absl flags, which pytest skips.
  path = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


class EvaluateTest(absltest.TestCase):

  def test_user_estimator_by_module_path(self):
    # An estimator added in its own module runs by `module:function` with no
    # edit to the library (docs/extending.md).
    tmp = _tempdir(self)
    csv, npy = write_wide_csv(tmp)
    out = os.path.join(tmp, 'out')
    argv = [
        'evaluate',
        '--data',
        csv,
        '--embeddings',
        npy,
        '--methods',
        'uniroute_kmeans,examples.low_rank_uniroute:estimator',
        '--trials',
        '2',
        '--chunk-size',
        '2',
        '--test-llm-fraction',
        '0.5',
        '--val-fraction',
        '0.2',
        '--quiet',
        '--no-plots',
        '--out',
        out,
    ]
    status, _, err = run_main(argv)
    self.assertEqual(status, 0, err)
    summary = json.loads(pathlib.Path(out, 'summary.json').read_text())
    self.assertIn('uniroute_low_rank', summary['methods'])
    self.assertIsInstance(
        summary['methods']['uniroute_low_rank']['area'], float
    )

  def test_unimportable_user_estimator_is_one_line_error(self):
    tmp = _tempdir(self)
    csv, npy = write_wide_csv(tmp)
    status, _, err = run_main([
        'evaluate',
        '--data',
        csv,
        '--embeddings',
        npy,
        '--methods',
        'no_such_module_xyz:estimator',
        '--trials',
        '1',
        '--quiet',
        '--out',
        os.path.join(tmp, 'o'),
    ])
    self.assertEqual(status, 2)
    self.assertEqual(len(err.strip().splitlines()), 1, err)
    self.assertIn('no_such_module_xyz', err)

  def test_evaluate_writes_summary_and_plots(self):
    tmp = _tempdir(self)
    csv, npy = write_wide_csv(tmp)
    out = os.path.join(tmp, 'out')
    argv = [
        'evaluate',
        '--data',
        csv,
        '--embeddings',
        npy,
        '--methods',
        'zero_router,uniroute_kmeans',
        '--trials',
        '3',
        '--chunk-size',
        '2',
        '--seed',
        '1',
        '--test-llm-fraction',
        '0.5',
        '--val-fraction',
        '0.2',
        '--quiet',
        '--out',
        out,
    ]
    old_mask = os.umask(0o022)
    self.addCleanup(os.umask, old_mask)
    status, stdout, _ = run_main(argv)
    self.assertEqual(status, 0)
    self.assertIn('UniRoute (K-means)', stdout)
    # Result files as open() makes them (0644 under umask 022), not 0600.
    for name in ('summary.json', 'config.json', 'metrics.jsonl'):
      mode = pathlib.Path(out, name).stat().st_mode & 0o777
      self.assertEqual(mode, 0o644, name)
    for png in pathlib.Path(out, 'plots').glob('*.png'):
      self.assertEqual(png.stat().st_mode & 0o777, 0o644, png.name)
    summary = json.loads(pathlib.Path(out, 'summary.json').read_text())
    self.assertEqual(summary['dataset'], 'wide')
    self.assertEqual(summary['trials'], 3)
    self.assertEqual(summary['llms'], [f'llm{j}' for j in range(6)])
    self.assertEqual(summary['split']['test_llms'], 3)
    self.assertEqual(summary['split']['val_prompts'], 30)
    self.assertEqual(
        set(summary['methods']), {'zero_router', 'uniroute_kmeans', 'oracle'}
    )
    for row in summary['methods'].values():
      for key in ('area', 'area50', 'peak'):
        self.assertTrue(np.isfinite(row[key]), key)
      self.assertTrue(row['qnc'] == 'inf' or np.isfinite(row['qnc']))
      self.assertLen(row['area_ci'], 2)
    # Curves and single-LLM points share trials and axis (issue 16): each
    # LLM's per-trial positions, and a 95% band per curve.
    for name, p in summary['single_llm_trials'].items():
      count = summary['single_llms'][name]['trials_in_test_pool']
      self.assertLen(p['x'], count)
      self.assertLen(p['quality'], count)
    self.assertEqual(set(summary['curve_bands']), set(summary['methods']))
    for png in ('deferral_curves.png', 'area_vs_k.png', 'psi_similarity.png'):
      self.assertTrue(pathlib.Path(out, 'plots', png).exists(), png)
    # The same command again resumes: nothing left to compute.
    status, _, _ = run_main(argv)
    self.assertEqual(status, 0)
    again = json.loads(pathlib.Path(out, 'summary.json').read_text())
    self.assertEqual(again['chunks_computed_this_run'], 0)
    self.assertEqual(
        again['methods']['uniroute_kmeans']['area'],
        summary['methods']['uniroute_kmeans']['area'],
    )

  def test_pool_unseen_runs_with_no_training_llms(self):
    tmp = _tempdir(self)
    csv, npy = write_wide_csv(tmp)
    out = os.path.join(tmp, 'out')
    status, stdout, err = run_main([
        'evaluate', '--data', csv, '--embeddings', npy, '--pool', 'unseen',
        '--methods', 'zero_router,knn,uniroute_kmeans', '--trials', '2',
        '--no-plots', '--quiet', '--out', out,
    ])  # fmt: skip
    self.assertEqual(status, 0, err)
    self.assertIn('6 unseen test LLMs', stdout)
    summary = json.loads(pathlib.Path(out, 'summary.json').read_text())
    self.assertEqual(summary['split']['train_llms'], 0)
    self.assertEqual(summary['split']['test_llms'], 6)
    # k = sqrt(N_val = 15), rounded: no selection without training LLMs.
    self.assertEqual(summary['hyperparameters']['knn']['values'], [4])
    # Without --methods, the defaults that need training LLMs are left out.
    with contextlib.redirect_stderr(io.StringIO()) as note:
      kept = cli._default_methods('unseen')  # pylint: disable=protected-access
    self.assertNotIn('uniroute_learned_map', kept)
    self.assertIn('knn', kept)
    self.assertIn('leaving out uniroute_learned_map', note.getvalue())

  def test_duplicate_prompts_kept_unless_dedup(self):
    tmp = _tempdir(self)
    csv, npy = write_wide_csv(tmp)
    frame = pd.read_csv(csv)
    frame.loc[7, 'prompt'] = frame.loc[3, 'prompt']  # one repeated text
    frame.to_csv(csv, index=False)
    for extra, kept in (([], 150), (['--dedup'], 149)):
      with self.subTest(extra=extra):
        out = os.path.join(tmp, f'out{kept}')
        status, _, err = run_main([
            'evaluate', '--data', csv, '--embeddings', npy,
            '--methods', 'zero_router', '--trials', '1', '--no-plots',
            '--quiet', '--out', out, *extra,
        ])  # fmt: skip
        self.assertEqual(status, 0, err)
        summary = json.loads(pathlib.Path(out, 'summary.json').read_text())
        self.assertEqual(summary['num_prompts'], kept)
        self.assertEqual(summary['dedup']['rows'], 150)
        self.assertEqual(summary['dedup']['kept'], kept)
        self.assertEqual(
            summary['dedup']['policy'], 'merge' if extra else 'keep'
        )


class BadInputTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = _tempdir(self)
    self.csv, self.npy = write_wide_csv(self.tmp, n=40)
    self.out = os.path.join(self.tmp, 'out')

  def no_prompt_csv(self):
    path = os.path.join(self.tmp, 'no_prompt.csv')
    pd.read_csv(self.csv).rename(columns={'prompt': 'question'}).to_csv(
        path, index=False
    )
    return path

  @parameterized.named_parameters(
      ('unknown_method', ['--methods', 'uniroute_magic'], 'uniroute_magic'),
      ('missing_path', ['--data', '/no/such/file.csv'], '/no/such/file.csv'),
      ('trials_zero', ['--trials', '0'], 'trials'),
      ('fraction', ['--val-fraction', '1.5'], '--val-fraction'),
      # The snake-case spelling of earlier releases still parses.
      ('old_spelling', ['--val_fraction', '1.5'], '--val-fraction'),
      # A library error names the flag, not the Python argument.
      ('library_names_flag', ['--val-fraction', '0.4'], '--train-fraction'),
      ('missing_embeddings', ['--embeddings', '/no/e.npy'], '/no/e.npy'),
      ('no_prompt_column', 'NO_PROMPT', 'prompt'),
      ('devices', ['--devices', '999'], '--devices 999'),
      ('negative_devices', ['--devices', '-1'], '--devices'),
      ('compile_cache', ['--compile-cache', '/proc/no/cache'], '/proc/no'),
  )
  def test_one_line_error(self, extra, expected):
    argv = [
        'evaluate',
        '--data',
        self.csv,
        '--embeddings',
        self.npy,
        '--quiet',
        '--out',
        self.out,
    ]
    if extra == 'NO_PROMPT':
      argv[2] = self.no_prompt_csv()
    else:
      argv += extra
    status, stdout, stderr = run_main(argv)
    self.assertEqual(status, 2)
    self.assertEqual(stdout, '')
    lines = stderr.strip().splitlines()
    self.assertLen(lines, 1, stderr)
    self.assertStartsWith(lines[0], 'unirouter: error: ')
    self.assertIn(expected, lines[0])
    self.assertNotIn('Traceback', stderr)
    self.assertFalse(os.path.exists(self.out), 'a failed run left --out')

  def test_bad_values_leave_no_directory(self):
    # Errors found only when the data are read (after JAX starts).
    for col, value in (
        ('llm0', '1.7'),
        ('llm0', 'x'),
        ('llm1|total_cost', '-1'),
    ):
      with self.subTest(col=col, value=value):
        frame = pd.read_csv(self.csv)
        frame[col] = frame[col].astype(object)
        frame.loc[3, col] = value
        bad = os.path.join(self.tmp, 'bad.csv')
        frame.to_csv(bad, index=False)
        out = os.path.join(self.tmp, 'new', 'out')
        status, _, stderr = run_main([
            'evaluate', '--data', bad, '--embeddings', self.npy,
            '--quiet', '--out', out,
        ])  # fmt: skip
        self.assertEqual(status, 2, stderr)
        self.assertLen(stderr.strip().splitlines(), 1, stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'new')))

  def test_no_prompt_column_with_format(self):
    argv = [
        'evaluate',
        '--data',
        self.no_prompt_csv(),
        '--format',
        'wide',
        '--embeddings',
        self.npy,
        '--quiet',
        '--out',
        self.out,
    ]
    status, _, stderr = run_main(argv)
    self.assertEqual(status, 2)
    self.assertLen(stderr.strip().splitlines(), 1)
    self.assertIn('prompt', stderr)

  def test_missing_command_and_out(self):
    for argv in ([], ['evaluate', '--data', self.csv]):
      status, _, stderr = run_main(argv)
      self.assertEqual(status, 2)
      self.assertLen(stderr.strip().splitlines(), 1)

  def test_console_script_subprocess(self):
    import subprocess  # pylint: disable=g-import-not-at-top

    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'unirouter_jax.shell.cli',
            'evaluate',
            '--data',
            '/no/such.csv',
            '--out',
            self.out,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    self.assertEqual(proc.returncode, 2)
    self.assertLen(proc.stderr.strip().splitlines(), 1, proc.stderr)
    self.assertIn('unirouter: error:', proc.stderr)


class GoldenTest(absltest.TestCase):
  """Fixed-seed numbers of ``unirouter evaluate`` on bundled data, pinned.

  Any change of them must be seen (and explained in the change). Pinned
  after issue 16 (one missing-label rule, curves from the cheapest LLM,
  QNC of the mean curve on the relative-cost axis).
  """

  ARGS = [
      'evaluate',
      '--data',
      'routerbench_subset',
      '--max-prompts',
      '500',
      '--methods',
      'zero_router,knn,uniroute_kmeans',
      '--chunk-size',
      '2',
      '--quiet',
      '--no-plots',
  ]
  PINNED = {  # method: (Area, Area(50%), QNC of the mean curve)
      'zero_router': (0.8340710718929767, 0.405426439344883, 0.99999673),
      'knn': (0.840895489901304, 0.40783259361982344, 0.94807455),
      'uniroute_kmeans': (0.842359452396631, 0.40824613332748416, 1.08994631),
      'oracle': (0.9748418158292771, 0.484908921122551, 0.49888468),
  }

  def test_pinned_numbers_and_splits_round_trip(self):
    tmp = _tempdir(self)
    first = os.path.join(tmp, 'first')
    status, _, err = run_main(self.ARGS + ['--trials', '2', '--out', first])
    self.assertEqual(status, 0, err)
    summary = json.loads(pathlib.Path(first, 'summary.json').read_text())
    for name, (area, area50, qnc) in self.PINNED.items():
      row = summary['methods'][name]
      self.assertAlmostEqual(row['area'], area, delta=1e-5, msg=name)
      self.assertAlmostEqual(row['area50'], area50, delta=1e-5, msg=name)
      if qnc == 'inf':
        self.assertEqual(row['qnc'], 'inf', name)
      else:
        self.assertAlmostEqual(row['qnc'], qnc, delta=1e-5, msg=name)
    self.assertEqual(summary['eval_prompts']['of'], 150)
    # The run's splits.json, read back, reproduces it trial by trial.
    splits = pathlib.Path(first, 'splits.json')
    records = json.loads(splits.read_text())
    self.assertLen(records, 2)
    self.assertEqual(set(records[0]), {'test_llms', 'train', 'val', 'test'})
    again = os.path.join(tmp, 'again')
    status, _, err = run_main(
        self.ARGS + ['--splits', str(splits), '--out', again]
    )
    self.assertEqual(status, 0, err)
    a = pathlib.Path(first, 'metrics.jsonl').read_text()
    b = pathlib.Path(again, 'metrics.jsonl').read_text()
    self.assertEqual(a, b)
    # A bad id is one line naming the trial and the id.
    records[1]['val'][0] = 'no-such-prompt'
    bad = pathlib.Path(tmp, 'bad.json')
    bad.write_text(json.dumps(records))
    status, _, err = run_main(
        self.ARGS + ['--splits', str(bad), '--out', os.path.join(tmp, 'b')]
    )
    self.assertEqual(status, 2)
    self.assertIn('trial 1', err)
    self.assertIn('no-such-prompt', err)


if __name__ == '__main__':
  absltest.main()


class FlagNamesTest(parameterized.TestCase):
  """Library errors reach the terminal naming the flags a user types."""

  @parameterized.parameters(
      ('target_cost: expected >= 0, got -1.', '--budget: expected >= 0'),
      (
          'labels missing (pass allow_missing=True to accept partial labels)',
          '(pass --allow-missing to accept partial labels)',
      ),
      ('train_fraction/val_fraction: the test', '--train-fraction/--val-'),
      ('num_trials: expected >= 1, got 0.', '--trials: expected >= 1'),
      ('--val-fraction: already a flag', '--val-fraction: already a flag'),
  )
  def test_as_flags(self, message, expected):
    self.assertIn(expected, cli.as_flags(message))

  def test_snake_case_spellings_become_kebab(self):
    self.assertEqual(
        cli.kebab_flags(
            ['evaluate', '--no_plots', '--val_fraction=0.2', 'a_b']
        ),
        ['evaluate', '--no-plots', '--val-fraction=0.2', 'a_b'],
    )
