"""JAX's persistent compilation cache for the command-line tools.

Compiling the protocol is most of a short run on a CPU; with the cache on, a
rerun (another seed, more trials, a resumed run, another dataset of the same
shapes) loads the compiled programs instead. The CLI and
``experiments/reproduce.py`` turn it on by default, in this order of
precedence:

1. ``--compile-cache DIR`` (``none`` turns it off);
2. ``JAX_COMPILATION_CACHE_DIR`` (JAX's own variable), left as it is;
3. ``$XDG_CACHE_HOME/unirouter_jax/xla`` (``~/.cache/unirouter_jax/xla``).

The cache holds only compiled XLA programs, keyed by the program and the
JAX/XLA versions and device; deleting the folder is always safe.
"""

from __future__ import annotations

import os
import pathlib

import jax

OFF = ('none', 'off', '')


def default_dir() -> pathlib.Path:
  """``$XDG_CACHE_HOME/unirouter_jax/xla`` (default ``~/.cache/...``)."""
  base = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
  return pathlib.Path(base) / 'unirouter_jax' / 'xla'


def enable(path: str | None = None) -> str | None:
  """Turns the cache on; returns its folder (None when turned off).

  Args:
    path: a folder, ``'none'`` to turn the cache off, or None for
      ``JAX_COMPILATION_CACHE_DIR`` else :func:`default_dir`.

  Raises:
    ValueError: naming ``--compile-cache`` if the folder cannot be made.
  """
  if path is not None and path.strip().lower() in OFF:
    jax.config.update('jax_enable_compilation_cache', False)
    return None
  if path is None:
    path = os.environ.get('JAX_COMPILATION_CACHE_DIR') or str(default_dir())
  try:
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ValueError(
        f'--compile-cache {path}: cannot make the folder ({e})'
    ) from None
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', str(path))
  return str(path)
