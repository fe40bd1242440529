"""How many XLA devices the CPU runs as, for the command-line tools.

XLA:CPU runs a program on a device, and the protocol is a long chain of
small steps (Adam steps on 64 prompts, k-means iterations) that two cores
barely share. Run as one device per core, the trials are sharded over the
devices (``evaluation.sweep``) and run side by side: on the 2-core machine
of the README, 48 RouterBench-subset trials ran in 28.5 s as 2 devices
against 35.0 s as one (1.23x; compile time unchanged), with the same
per-trial results (to 1e-6, ``tests/shell/test_devices.py``).

So ``unirouter evaluate`` and ``experiments/reproduce.py`` split the CPU
into one device per core they may use (at most :data:`MAX_AUTO`), unless
the user has chosen: ``--cpu-devices N`` (``1``: the old single device),
``JAX_NUM_CPU_DEVICES`` / ``jax_num_cpu_devices``, or
``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``. It must happen
before JAX starts its backends; with a GPU or TPU the CPU devices are not
used for trials. The library itself never changes it.
"""

from __future__ import annotations

import os

import jax

# Auto mode uses at most this many CPU devices (measured on 2 cores only).
MAX_AUTO = 8
FLAG = '--cpu-devices'


def cores() -> int:
  """CPU cores this process may run on."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def user_choice() -> str | None:
  """Where the user set the CPU device count, or None."""
  if 'xla_force_host_platform_device_count' in os.environ.get('XLA_FLAGS', ''):
    return 'XLA_FLAGS'
  if 'JAX_NUM_CPU_DEVICES' in os.environ:
    return 'JAX_NUM_CPU_DEVICES'
  if jax.config.jax_num_cpu_devices != -1:
    return 'jax_num_cpu_devices'
  return None


def split_cpu(count: int = 0) -> int | None:
  """Runs the CPU backend as ``count`` devices (0: one per core, auto).

  Args:
    count: devices; 0 chooses ``min(cores(), MAX_AUTO)`` unless the user
      already chose (:func:`user_choice`) or JAX's backends already run, in
      which case nothing changes.

  Returns:
    The count set, or None when left as it was.

  Raises:
    ValueError: naming ``--cpu-devices`` for a negative count, or a count
      asked for after JAX's backends started with another.
  """
  if count < 0:
    raise ValueError(f'{FLAG} {count}: expected 0 (one per core) or more')
  explicit = count > 0
  if not explicit:
    if user_choice() is not None:
      return None
    count = max(1, min(cores(), MAX_AUTO))
  try:
    jax.config.update('jax_num_cpu_devices', count)
  except RuntimeError:  # the backends already run (a library caller)
    have = jax.local_device_count('cpu')
    if explicit and have != count:
      raise ValueError(
          f'{FLAG} {count}: JAX already runs with {have} CPU device(s) in '
          'this process; set it before any JAX computation'
      ) from None
    return None
  return count
