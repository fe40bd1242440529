"""``unirouter route`` / ``export`` / cost tables through the CLI's ``main``:
what an operator sees on stdout and stderr, and one-line errors (rc 2)
that leave nothing half-written."""

import contextlib
import io
import json
import os
import shutil
import tempfile

import jax
import numpy as np
from absl.testing import absltest, parameterized

from tests.shell import subproc
from unirouter_jax import data
from unirouter_jax.deploy import heldout, portable
from unirouter_jax.deploy import io as router_io
from unirouter_jax.deploy import router as router_lib
from unirouter_jax.shell import cli


def run_main(*argv):
  """``(exit status, stdout, stderr)`` of ``cli.main(argv)``."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      status = cli.main([str(a) for a in argv])
    except SystemExit as e:
      status = e.code
  return status, out.getvalue(), err.getvalue()


class RouteCLITest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    ds = data.load('alpacaeval')
    cls.names = ds.llm_names
    rng = np.random.default_rng(0)
    cls.emb = cls._file('emb.npy')
    np.save(cls.emb, rng.normal(size=(ds.num_prompts, 8)).astype(np.float32))
    cls.q5, cls.q7 = cls._file('q5.npy'), cls._file('q7.npy')
    np.save(cls.q5, rng.normal(size=(5, 8)).astype(np.float32))
    np.save(cls.q7, rng.normal(size=(7, 8)).astype(np.float32))
    # Latency-like costs: 1 ms .. 53 ms, as clean decimals.
    cls.costs = {n: round(0.001 * (i + 1), 3) for i, n in enumerate(cls.names)}
    cls.costs_csv = cls._file('latency.csv')
    with open(cls.costs_csv, 'w') as f:
      f.write(
          'llm,cost\n' + ''.join(f'{n},{c}\n' for n, c in cls.costs.items())
      )
    fit = ['fit', '--data', 'alpacaeval', '--embeddings', cls.emb]
    fit += ['--encoder-id', 'random-8', '--k', 4, '--probe-size', 60]
    cls.router = cls._file('router')
    status, out, err = run_main(
        *fit, '--out', cls.router, '--costs', cls.costs_csv
    )
    assert status == 0, err
    cls.fit_out = json.loads(out)
    cls.old = cls._file('old_router')  # no held-out prompts
    status, _, err = run_main(*fit, '--out', cls.old, '--calib-size', 0)
    assert status == 0, err

  @classmethod
  def _file(cls, name):
    return os.path.join(cls.tmp, name)

  def _copy(self, router):
    path = tempfile.mkdtemp(dir=self.tmp)
    shutil.rmtree(path)
    shutil.copytree(router, path)
    return path

  def _ok(self, *argv):
    status, out, err = run_main(*argv)
    self.assertEqual(status, 0, err)
    return out, err

  def _error(self, message, *argv):
    status, out, err = run_main(*argv)
    self.assertEqual(status, 2)
    self.assertEqual(out, '')
    self.assertEqual(err, f'unirouter: error: {message}\n')

  def test_fit_keeps_heldout_prompts_and_the_table_costs(self):
    self.assertEqual(self.fit_out['num_calib'], 80)
    self.assertEqual(self.fit_out['costs_from'], self.costs_csv)
    self.assertEqual(
        self.fit_out['cost_m'], [self.costs[n] for n in self.names]
    )
    _, calib = router_io.load_deployed(self.router)
    self.assertEqual(calib.num_prompts, 80)
    self.assertIsNone(router_io.load_deployed(self.old)[1])

  def test_route_prints_lambda_and_clean_costs(self):
    out, err = self._ok(
        'route',
        '--router',
        self.router,
        '--embeddings',
        self.q5,
        '--lambda',
        0.05,
    )
    self.assertEqual(err, '')
    self.assertNotIn('0000000', out)  # no float32 noise in any number
    body = json.loads(out)
    self.assertEqual(list(body), ['lambda', 'results'])
    self.assertEqual(body['lambda'], 0.05)
    for row in body['results']:
      cands = row['candidates']
      self.assertEqual(row['choice'], cands[0]['llm'])
      self.assertLen(cands, len(self.names))
      for c in cands:
        self.assertEqual(c['cost'], self.costs[c['llm']])
      keys = [
          (c['score'], c['cost'], self.names.index(c['llm'])) for c in cands
      ]
      self.assertEqual(keys, sorted(keys))

  def test_budget_is_calibrated_on_heldout_prompts(self):
    lams = []
    for q, n in ((self.q5, 5), (self.q7, 7)):
      out, err = self._ok(
          'route', '--router', self.router, '--embeddings', q, '--budget', 0.01
      )
      self.assertEqual(err, '')
      body = json.loads(out)
      b = body['budget']
      lams.append(body['lambda'])
      self.assertEqual(b['lambda'], body['lambda'])
      self.assertEqual(b['target'], 0.01)
      self.assertEqual(b['calibrated_on'], 'held-out')
      self.assertEqual(b['calibration_prompts'], 80)
      self.assertLessEqual(b['calibration_mean_cost'], 0.01)
      self.assertTrue(b['reached'])
      self.assertFalse(b['mixed'])
      self.assertNotIn('note', body)
      chosen = [self.costs[r['choice']] for r in body['results']]
      self.assertLen(chosen, n)
      self.assertAlmostEqual(b['mean_cost'], np.mean(chosen), delta=1e-9)
      self.assertEqual(b['within_budget'], b['mean_cost'] <= 0.01)
    self.assertEqual(lams[0], lams[1])  # the batch plays no part

  def test_budget_without_heldout_prompts_says_so(self):
    out, err = self._ok(
        'route',
        '--router',
        self.old,
        '--embeddings',
        self.q5,
        '--budget',
        0.0001,
    )
    body = json.loads(out)
    self.assertEqual(body['budget']['calibrated_on'], 'batch')
    self.assertEqual(body['budget']['calibration_prompts'], 5)
    self.assertEqual(body['note'], heldout.NOTE_BATCH)
    self.assertEqual(err, f'unirouter: note: {heldout.NOTE_BATCH}\n')

  def test_unreachable_budget_says_so(self):
    out, err = self._ok(
        'route',
        '--router',
        self.router,
        '--embeddings',
        self.q5,
        '--budget',
        0,
    )
    note = (
        'the budget 0.0 is below the cheapest routing (0.001 on the '
        'calibration prompts); every prompt goes to the cheapest LLM'
    )
    self.assertEqual(json.loads(out)['note'], note)
    self.assertEqual(err, f'unirouter: note: {note}\n')
    self.assertEqual(json.loads(out)['budget']['mean_cost'], 0.001)

  def test_jsonl_one_line_per_prompt(self):
    out, err = self._ok(
        'route',
        '--router',
        self.router,
        '--embeddings',
        self.q7,
        '--budget',
        0.01,
        '--seed',
        0,
        '--format',
        'jsonl',
        '--top',
        2,
    )
    lines = out.splitlines()
    self.assertLen(lines, 7)
    for line in lines:
      row = json.loads(line)
      self.assertLen(row['candidates'], 2)
      self.assertEqual(row['choice'], row['candidates'][0]['llm'])
    self.assertRegex(
        err,
        r'^unirouter: route: lambda [0-9.e-]+; budget 0\.01: mean cost '
        r'[0-9.e-]+ on these prompts, [0-9.e-]+ on the 80 held-out '
        r'calibration prompts\n$',
    )

  def test_export_routes_as_the_cli(self):
    path = self._file('gateway/router.json')
    out, err = self._ok('export', '--router', self.router, '--out', path)
    self.assertEqual(err, '')
    summary = json.loads(out)
    self.assertLen(summary['calibrated_budgets'], 11)
    self.assertEqual(summary['llms'], list(self.names))
    reader = portable.load_json(path)
    self.assertEqual(reader.encoder, {'id': 'random-8', 'weights_hash': None})
    emb = np.load(self.q7)
    for lam in (0.0, 10.0, portable.lambda_for_budget(reader, 0.01)):
      out, _ = self._ok(
          'route',
          '--router',
          self.router,
          '--embeddings',
          self.q7,
          '--lambda',
          lam,
      )
      want = [r['choice'] for r in json.loads(out)['results']]
      got = portable.route_numpy(reader, emb, lam)
      self.assertEqual([reader.llm_names[i] for i in got], want)
    out, _ = self._ok(
        'export',
        '--router',
        self.router,
        '--out',
        path,
        '--budget',
        0.02,
        '--budget',
        0.005,
    )
    self.assertEqual(json.loads(out)['calibrated_budgets'], [0.02, 0.005])
    self.assertEqual(sorted(os.listdir(os.path.dirname(path))), ['router.json'])

  def test_export_without_heldout_prompts(self):
    path = self._file('old.json')
    out, err = self._ok('export', '--router', self.old, '--out', path)
    self.assertIsNone(json.loads(out)['calibrated_budgets'])
    self.assertEqual(
        err,
        f'unirouter: note: the router {self.old} keeps no held-out '
        'calibration prompts; exported without calibrated lambdas '
        '(calibration: null)\n',
    )
    self.assertIsNone(portable.load_json(path).calibration)
    none = self._file('none.json')
    self._error(
        f'--budget: the router {self.old} keeps no held-out calibration '
        'prompts, so no budget can be calibrated; refit it with `unirouter '
        'fit` (which keeps them), or export without --budget.',
        'export',
        '--router',
        self.old,
        '--out',
        none,
        '--budget',
        0.01,
    )
    self.assertFalse(os.path.exists(none))

  def test_export_write_error_leaves_nothing(self):
    folder = self._file('a_folder')
    os.makedirs(os.path.join(folder, 'inside'))
    self._error(
        f'--out {folder}/inside: cannot write: Is a directory.',
        'export',
        '--router',
        self.router,
        '--out',
        f'{folder}/inside',
    )
    self.assertEqual(os.listdir(folder), ['inside'])
    self.assertEqual(os.listdir(os.path.join(folder, 'inside')), [])

  @parameterized.named_parameters(
      (
          'budget',
          ['--budget', -1],
          '--budget: expected a finite cost >= 0, got -1.0.',
      ),
      (
          'lambda',
          ['--lambda', -1],
          '--lambda: expected a finite value >= 0, got -1.0.',
      ),
      (
          'lambda_nan',
          ['--lambda', 'nan'],
          '--lambda: expected a finite value >= 0, got nan.',
      ),
      ('seed', ['--seed', 1], '--seed: only used with --budget.'),
      ('top', ['--top', 0], '--top: expected an integer >= 1, got 0.'),
  )
  def test_route_errors(self, extra, message):
    self._error(
        message,
        'route',
        '--router',
        self.router,
        '--embeddings',
        self.q5,
        *extra,
    )

  def test_route_format_choice(self):
    status, out, err = run_main(
        'route',
        '--router',
        self.router,
        '--embeddings',
        self.q5,
        '--format',
        'xml',
    )
    self.assertEqual((status, out), (2, ''))
    self.assertLen(err.splitlines(), 1)
    self.assertStartsWith(err, 'unirouter: error: argument --format: invalid')

  def test_export_bad_budget(self):
    self._error(
        '--budget: expected a finite cost >= 0, got -1.0.',
        'export',
        '--router',
        self.router,
        '--out',
        self._file('x.json'),
        '--budget',
        -1,
    )
    self.assertFalse(os.path.exists(self._file('x.json')))

  def test_set_cost_from_a_table_keeps_heldout_prompts(self):
    work = self._copy(self.router)
    table = self._file('flat.json')
    with open(table, 'w') as f:
      json.dump({n: 0.5 for n in self.names} | {'not-in-router': 1}, f)
    out, _ = self._ok('set-cost', '--router', work, '--costs', table)
    self.assertEqual(json.loads(out)['cost_m'], [0.5] * len(self.names))
    router, calib = router_io.load_deployed(work)
    np.testing.assert_array_equal(router.cost_m, 0.5)
    self.assertEqual(calib.num_prompts, 80)
    out, _ = self._ok(
        'set-cost', '--router', work, '--name', self.names[0], '--cost', 0.002
    )
    self.assertEqual(json.loads(out)['cost_m'][0], 0.002)
    self.assertIsNotNone(router_io.load_deployed(work)[1])

  def test_cost_table_missing_an_llm(self):
    short = self._file('short.csv')
    with open(short, 'w') as f:
      f.write(f'llm,cost\n{self.names[0]},1\n')
    missing = (
        f'--costs {short}: no cost for LLM {self.names[1]!r} (and '
        f'{len(self.names) - 2} more); the table must give a cost for every '
        f'LLM of the router ({len(self.names)}).'
    )
    before = router_io.read_router_manifest(self.router)
    self._error(missing, 'set-cost', '--router', self.router, '--costs', short)
    self.assertEqual(router_io.read_router_manifest(self.router), before)
    out = self._file('never_fitted')
    self._error(
        missing,
        'fit',
        '--data',
        'alpacaeval',
        '--embeddings',
        self.emb,
        '--encoder-id',
        'random-8',
        '--out',
        out,
        '--costs',
        short,
    )
    self.assertFalse(os.path.exists(out))

  def test_set_cost_arguments(self):
    self._error(
        'set-cost: expected --name NAME --cost COST, or --costs FILE.',
        'set-cost',
        '--router',
        self.router,
        '--name',
        self.names[0],
    )
    self._error(
        'set-cost: expected either --costs FILE or --name NAME --cost COST, '
        'not both.',
        'set-cost',
        '--router',
        self.router,
        '--costs',
        self.costs_csv,
        '--cost',
        1,
    )

  def test_fit_calib_size_too_large(self):
    out = self._file('never_fitted_2')
    self._error(
        '--calib-size: expected 0..744 (the prompts left after 60 probe '
        'prompts, less one to cluster), got 800.',
        'fit',
        '--data',
        'alpacaeval',
        '--embeddings',
        self.emb,
        '--encoder-id',
        'random-8',
        '--probe-size',
        60,
        '--out',
        out,
        '--calib-size',
        800,
    )
    self.assertFalse(os.path.exists(out))

  def test_removing_the_last_llm(self):
    rng = np.random.default_rng(0)
    one = router_lib.fit_router(
        jax.random.key(0),
        rng.normal(size=(40, 8)).astype(np.float32),
        np.ones((40, 1), np.float32),
        np.ones((40, 1), bool),
        [1.0],
        ['only'],
        train_idx=np.arange(10, 40),
        probe_idx=np.arange(10),
        k=2,
        encoder_id='random-8',
    )
    path = self._file('one_llm')
    router_io.save_router(path, one)
    before = router_io.read_router_manifest(path)
    self._error(
        "name: cannot remove 'only', the router's only LLM (a router needs "
        'at least one; add another LLM first).',
        'remove-llm',
        '--router',
        path,
        '--name',
        'only',
    )
    self.assertEqual(router_io.read_router_manifest(path), before)

  def test_console_error_is_one_line(self):
    out = self._file('sub.json')
    proc = subproc.run([
        '-m',
        'unirouter_jax.shell.cli',
        'export',
        '--router',
        self._file('no_such_router'),
        '--out',
        out,
    ])
    self.assertEqual(proc.returncode, 2)
    self.assertEqual(
        proc.stderr,
        f'unirouter: error: {self._file("no_such_router")}: manifest.json is '
        'missing\n',
    )
    self.assertFalse(os.path.exists(out))


if __name__ == '__main__':
  absltest.main()
