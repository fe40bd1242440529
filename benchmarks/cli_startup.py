"""Start-up time of the ``unirouter`` command (issue #19: goal under 1 s).

Times, in fresh processes, ``--help`` of the command and of each
subcommand, an argument error, and for scale ``import jax``; prints the
median of ``--repeats`` runs of each. Run::

  python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from machine import machine  # pylint: disable=g-import-not-at-top

CLI = [sys.executable, '-m', 'unirouter_jax.shell.cli']
CASES = {
    'unirouter --help': CLI + ['--help'],
    **{
        f'unirouter {c} --help': CLI + [c, '--help']
        for c in ('evaluate', 'fit', 'probe-set', 'add-llm', 'route')
    },
    'unirouter evaluate --trials 0 (error)': (
        CLI + ['evaluate', '--data', 'x', '--out', 'never', '--trials', '0']
    ),
    'unirouter evaluate --data missing.csv (error)': (
        CLI + ['evaluate', '--data', 'missing.csv', '--out', 'never']
    ),
    'python -c "import jax" (for scale)': [sys.executable, '-c', 'import jax'],
}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--repeats', type=int, default=5)
  a = ap.parse_args(argv)
  env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))  # fmt: skip
  print(f'{"command":45s} median s  (of {a.repeats})')
  for name, cmd in CASES.items():
    times = []
    for _ in range(a.repeats):
      t0 = time.perf_counter()
      subprocess.run(cmd, env=env, capture_output=True, check=False)
      times.append(time.perf_counter() - t0)
    print(f'{name:45s} {statistics.median(times):8.3f}')
  print('machine:', machine())


if __name__ == '__main__':
  main()
