"""What a benchmark ran on: CPU model, usable cores, JAX and its device.

Shared by the scripts in ``benchmarks/`` (run as ``python benchmarks/x.py``,
so this folder is on ``sys.path``).
"""

from __future__ import annotations

import os
import platform


def machine() -> dict:
  """The machine, as a JSON-able dict (imports jax)."""
  import jax  # pylint: disable=g-import-not-at-top

  cpu = platform.processor() or ''
  try:
    with open('/proc/cpuinfo') as f:
      names = [r.split(':', 1)[1].strip() for r in f if 'model name' in r]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  dev = jax.devices()[0]
  return {
      'cpu': cpu,
      'cores': len(os.sched_getaffinity(0)),
      'jax': jax.__version__,
      'backend': jax.default_backend(),
      'device': getattr(dev, 'device_kind', str(dev)),
      'devices': jax.device_count(),
      'python': platform.python_version(),
  }
