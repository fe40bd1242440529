"""A fresh Python interpreter for tests that need one (the CPU device
count, whether JAX gets imported): ``run(args)`` with the repository on
``PYTHONPATH``."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(args, *, cwd=ROOT, drop=(), **extra) -> subprocess.CompletedProcess:
  """``python *args`` with ``os.environ`` less ``drop`` plus ``extra``."""
  env = {k: v for k, v in os.environ.items() if k not in drop}
  env.update(PYTHONPATH=str(ROOT), **extra)
  return subprocess.run(
      [sys.executable, *args],
      cwd=cwd,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
  )
