"""``unirouter evaluate`` sharded over 8 (forced host) devices and over 2
processes under ``jax.distributed``: the per-trial results of one device."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import textwrap

from absl.testing import absltest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARGS = [
    'evaluate', '--data', 'routerbench_subset', '--max-prompts', '300',
    '--trials', '5', '--chunk-size', '5', '--methods',
    'zero_router,knn,uniroute_kmeans', '--trial-batch-size', '1',
    '--no-plots', '--quiet',
]  # fmt: skip
METRICS = ('area', 'area50', 'qnc', 'peak')


def _records(out):
  """``{(trial, method): record}`` of a run's ``metrics.jsonl``."""
  with open(os.path.join(out, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return {(r['trial'], r['method']): r for r in rows}


def _assert_same_trials(test, got, want):
  """The same trials, test LLMs and selected K; metrics to float32 rounding
  (XLA fuses a device's one-trial loop differently from a
  longer one)."""
  test.assertEqual(sorted(got), sorted(want))
  for key, w in want.items():
    g = got[key]
    test.assertEqual(g['test_llms'], w['test_llms'], key)
    test.assertEqual(g.get('selected'), w.get('selected'), key)
    for name in METRICS:
      if isinstance(w[name], str):  # 'inf'
        test.assertEqual(g[name], w[name], (key, name))
      else:
        # QNC reads a cost off a flat stretch of the curve: 1e-5 relative.
        tol = 1e-5 * abs(w[name]) if name == 'qnc' else 1e-6
        test.assertAlmostEqual(g[name], w[name], delta=tol, msg=(key, name))


def _python(code, devices, **env):
  """Runs ``code`` in a fresh interpreter with ``devices`` CPU devices."""
  env = dict(
      os.environ,
      XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
      JAX_PLATFORMS='cpu',
      PYTHONPATH=str(ROOT),
      **env,
  )
  return subprocess.Popen(
      [sys.executable, '-c', textwrap.dedent(code)],
      cwd=ROOT,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )


def _check(test, proc):
  out, err = proc.communicate(timeout=600)
  test.assertEqual(proc.returncode, 0, err[-3000:])
  return out


class DevicesTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp()

  def test_8_devices_equal_1_device_trial_by_trial(self):
    code = f"""
        import json, sys, jax
        from unirouter_jax.shell import cli
        assert jax.device_count() == 8, jax.devices()
        for n in (8, 1):
          out = '{self.tmp}/d%d' % n
          assert cli.main({ARGS!r} + ['--devices', str(n), '--out', out]) == 0
          timing = json.load(open(out + '/summary.json'))['timing']
          print('TIMING', json.dumps(timing))
        """
    lines = _check(self, _python(code, 8)).splitlines()
    timings = [json.loads(x[7:]) for x in lines if x.startswith('TIMING ')]
    self.assertEqual([t['devices'] for t in timings], [8, 1])
    many, one = _records(f'{self.tmp}/d8'), _records(f'{self.tmp}/d1')
    self.assertLen(one, 5 * 4)  # 5 trials x (3 methods + the oracle)
    _assert_same_trials(self, many, one)

  def test_two_processes_under_jax_distributed_equal_one_process(self):
    with socket.socket() as s:
      s.bind(('localhost', 0))
      port = s.getsockname()[1]
    code = f"""
        import os, jax
        jax.config.update('jax_cpu_collectives_implementation', 'gloo')
        jax.distributed.initialize(
            coordinator_address='localhost:{port}', num_processes=2,
            process_id=int(os.environ['PROC_ID']))
        assert jax.device_count() == 8 and jax.local_device_count() == 4
        from unirouter_jax.shell import cli
        out = '{self.tmp}/p' + os.environ['PROC_ID']
        assert cli.main({ARGS!r} + ['--out', out]) == 0
        """
    procs = [_python(code, 4, PROC_ID=str(i)) for i in range(2)]
    for proc in procs:
      self.addCleanup(proc.kill)  # a failed peer must not leave one hanging
    for proc in procs:
      _check(self, proc)
    alone = f"""
        from unirouter_jax.shell import cli
        assert cli.main({ARGS!r} + ['--devices', '1', '--out', '{self.tmp}/a'])
        """
    _check(self, _python(alone.replace('assert cli', 'assert not cli'), 1))
    want = _records(f'{self.tmp}/a')
    # Each host gathers every trial, and writes the same records.
    _assert_same_trials(self, _records(f'{self.tmp}/p0'), want)
    _assert_same_trials(self, _records(f'{self.tmp}/p1'), want)


if __name__ == '__main__':
  absltest.main()
