"""Test-session set-up: one compilation cache shared by the whole run.

Many tests compile the same programs (the protocol on the same synthetic
shapes) in different processes: pytest-xdist workers, CLI subprocesses and
notebook kernels. JAX's persistent compilation cache, in a temporary folder
made for this run and removed at its end, lets each program compile once per
run. A fresh run starts with an empty cache, so nothing is carried between
runs; set ``JAX_COMPILATION_CACHE_DIR`` yourself to keep one.
"""

import atexit
import os
import shutil
import tempfile

if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  # Set before JAX reads its configuration; child processes (xdist workers,
  # subprocesses, kernels) inherit it and share the folder.
  _dir = tempfile.mkdtemp(prefix='unirouter-jax-test-cache-')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _dir
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
  atexit.register(shutil.rmtree, _dir, ignore_errors=True)

# The test process keeps one CPU device, as before shell.host_devices: the
# CLI called in-process would otherwise split the CPU for every later test.
# Subprocesses (CLI runs, notebooks) use the CLI's default (one per core).
import jax  # noqa: E402

jax.config.update('jax_num_cpu_devices', 1)
