"""Atomic orbax checkpoints of fitted pytrees, with a JSON manifest.

This is the only module of the package that imports orbax (lazily, inside
the functions), so ``import unirouter_jax`` stays light.

Layout of a checkpoint directory::

  directory/
    state/          orbax StandardSave of the pytree
    manifest.json   caller's metadata (config, coordinates, versions, ...)

A save is atomic at the level of ``directory``: everything is written into a
fresh temporary sibling ``.<name>.tmp-<random>``; only when it is complete is
``directory`` swapped for it (the previous checkpoint is first renamed to the
sibling ``.<name>.old``, then deleted). An exception during the write removes
the temporary directory and leaves the previous checkpoint untouched. A hard
crash between the two renames (two metadata operations) leaves the previous
checkpoint at ``.<name>.old``, from which :func:`restore` and
:func:`read_manifest` recover.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from typing import Any

import jax
import numpy as np

_STATE = 'state'
_MANIFEST = 'manifest.json'


def _paths(directory) -> tuple[pathlib.Path, pathlib.Path]:
  path = pathlib.Path(directory).expanduser().absolute()
  return path, path.with_name(f'.{path.name}.old')


def _live(directory) -> pathlib.Path:
  """The directory to read: ``directory``, or its backup after a crash."""
  path, old = _paths(directory)
  if not path.exists() and old.exists():
    return old
  return path


def _checkpointer():
  # Imported here, not at the top, to keep orbax off `import unirouter_jax`.
  import orbax.checkpoint as ocp

  # The synchronous form of ocp.StandardCheckpointer (which saves in a
  # background thread): the write must be complete before the rename.
  return ocp, ocp.Checkpointer(ocp.StandardCheckpointHandler())


def _to_jsonable(obj: Any) -> Any:
  if isinstance(obj, dict):
    return {str(k): _to_jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_to_jsonable(v) for v in obj]
  if isinstance(obj, (np.ndarray, jax.Array)):
    return np.asarray(obj).tolist()
  if isinstance(obj, np.generic):
    return obj.item()
  return obj


def save(directory, tree: Any, *, manifest: dict | None = None) -> None:
  """Writes ``tree`` (and ``manifest``) to ``directory`` atomically.

  Args:
    directory: destination; an existing checkpoint there is replaced only
      once the new one is completely written.
    tree: a pytree of arrays (e.g. ``LearnedMapParams``, ``OracleParams``).
    manifest: JSON-serialisable metadata (arrays become lists); ``{}`` when
      None.

  Raises:
    TypeError: if ``manifest`` is not JSON-serialisable (nothing is written).
  """
  path, old = _paths(directory)
  path.parent.mkdir(parents=True, exist_ok=True)
  text = json.dumps(_to_jsonable(manifest or {}), indent=2, sort_keys=True)
  if old.exists():  # an earlier save crashed between or after its renames
    if path.exists():
      shutil.rmtree(old)
    else:
      os.replace(old, path)
  ocp, ckptr = _checkpointer()
  tmp = pathlib.Path(
      tempfile.mkdtemp(prefix=f'.{path.name}.tmp-', dir=path.parent)
  )
  try:
    ckptr.save(tmp / _STATE, args=ocp.args.StandardSave(tree))
    (tmp / _MANIFEST).write_text(text)
    if path.exists():
      os.replace(path, old)
    os.replace(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    if old.exists() and not path.exists():
      os.replace(old, path)
    raise
  shutil.rmtree(old, ignore_errors=True)


def _abstract_leaf(x) -> jax.ShapeDtypeStruct:
  dtype = x.dtype if hasattr(x, 'dtype') else np.result_type(x)
  return jax.ShapeDtypeStruct(np.shape(x), dtype)


def restore(directory, abstract_tree: Any) -> Any:
  """Reads the pytree saved at ``directory``.

  Args:
    directory: a directory written by :func:`save`.
    abstract_tree: the structure to restore into: the output of
      ``jax.eval_shape`` (``jax.ShapeDtypeStruct`` leaves) or a template
      with array leaves of the right shapes and dtypes.

  Returns:
    A pytree with the structure of ``abstract_tree`` and ``jax.Array`` leaves.

  Raises:
    ValueError: naming ``directory`` if it holds no readable checkpoint or
      one that does not match ``abstract_tree``.
  """
  path = _live(directory)
  if not (path / _STATE).is_dir():
    raise ValueError(
        f'restore: no checkpoint at {path} (expected a directory written by'
        f' unirouter_jax.deploy.checkpointing.save, with a {_STATE!r}'
        ' subdirectory).'
    )
  ocp, ckptr = _checkpointer()
  abstract = jax.tree.map(_abstract_leaf, abstract_tree)
  try:
    return ckptr.restore(path / _STATE, args=ocp.args.StandardRestore(abstract))
  except Exception as e:  # orbax raises many types on corrupt data
    raise ValueError(
        f'restore: could not read the checkpoint at {path} into the given '
        f'abstract tree: {type(e).__name__}: {e}'
    ) from e


def read_manifest(directory) -> dict:
  """Returns the manifest saved with the checkpoint at ``directory``.

  Raises:
    ValueError: naming the file if it is missing or not valid JSON.
  """
  file = _live(directory) / _MANIFEST
  try:
    return json.loads(file.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f'read_manifest: cannot read {file}: {e}') from e
