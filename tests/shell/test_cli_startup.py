"""Every ``unirouter`` subcommand answers ``--help`` and a bad argument the
way a terminal user expects: in a subprocess, without importing JAX, the
error as one line with exit status 2, no traceback, nothing written.
(Start-up time itself is measured by ``benchmarks/cli_startup.py``, not
asserted here.)"""

import argparse
import os
import tempfile

from absl.testing import absltest, parameterized

from tests.shell import subproc
from unirouter_jax.shell import cli


def _commands() -> tuple[str, ...]:
  """Every subcommand the parser has (new ones are covered unasked)."""
  parser = cli.build_parser()
  (sub,) = [
      a for a in parser._actions  # pylint: disable=protected-access
      if isinstance(a, argparse._SubParsersAction)  # pylint: disable=protected-access
  ]  # fmt: skip
  return tuple(sub.choices)


COMMANDS = _commands()
# Python that runs the CLI and reports whether JAX got imported.
CODE = (
    'import sys\n'
    'from unirouter_jax.shell import cli\n'
    'try:\n'
    '  rc = cli.main(sys.argv[1:])\n'
    'except SystemExit as e:\n'
    '  rc = e.code\n'
    "print('JAX_IMPORTED' if 'jax' in sys.modules else 'NO_JAX')\n"
    'sys.exit(rc)\n'
)


def _run(args, cwd):
  return subproc.run(['-c', CODE, *args], cwd=cwd)


class CliStartupTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.cwd = tempfile.mkdtemp()

  @parameterized.parameters(*COMMANDS)
  def test_help_and_a_bad_argument(self, command):
    ok = _run([command, '--help'], self.cwd)
    self.assertEqual(ok.returncode, 0, ok.stderr)
    self.assertIn(f'usage: unirouter {command}', ok.stdout)
    self.assertTrue(ok.stdout.rstrip().endswith('NO_JAX'), ok.stdout[-200:])
    out = os.path.join(self.cwd, 'never')
    bad = _run([command, '--no-such-flag', '1', '--out', out], self.cwd)
    self.assertEqual(bad.returncode, 2, bad.stderr)
    lines = bad.stderr.strip().splitlines()
    self.assertLen(lines, 1, bad.stderr)
    self.assertStartsWith(lines[0], 'unirouter')
    self.assertIn(': error: ', lines[0])  # (required flags, or the bad one)
    self.assertNotIn('Traceback', bad.stderr)
    self.assertEqual(bad.stdout.strip(), 'NO_JAX')
    self.assertEqual(os.listdir(self.cwd), [])  # nothing written

  def test_top_level_help(self):
    ok = _run(['--help'], self.cwd)
    self.assertEqual(ok.returncode, 0, ok.stderr)
    for command in COMMANDS:
      self.assertIn(command, ok.stdout)
    self.assertTrue(ok.stdout.rstrip().endswith('NO_JAX'))


if __name__ == '__main__':
  absltest.main()
