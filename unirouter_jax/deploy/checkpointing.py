"""Atomic orbax checkpoints of fitted pytrees, with a JSON manifest.

This is the only module of the package that imports orbax (lazily, inside
the functions), so ``import unirouter_jax`` stays light.

Layout of a checkpoint directory::

  directory/
    state/          orbax StandardSave of the pytree
    manifest.json   caller's metadata (config, coordinates, versions, ...)

Tamper evidence: the manifest holds, under ``integrity``, every file of
``state/`` with its size and SHA-256, and the SHA-256 of the manifest's own
other contents. :func:`read_manifest` and :func:`restore` check them first
and name, in one line, the file that is missing, damaged or unexpected
(checkpoints written before this carry no ``integrity`` entry and are read
unchecked).

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

import hashlib
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


_INTEGRITY = 'integrity'


def umask_mode(mode: int) -> int:
  """``mode`` under the process umask, as ``open()`` / ``mkdir`` give it
  (``tempfile``'s files are 0600 and folders 0700: unreadable to others)."""
  mask = os.umask(0)
  os.umask(mask)
  return mode & ~mask


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _file_table(root: pathlib.Path) -> dict[str, dict]:
  """``{relative path: {'bytes', 'sha256'}}`` of every file below ``root``."""
  table = {}
  for file in sorted(p for p in root.rglob('*') if p.is_file()):
    data = file.read_bytes()
    rel = file.relative_to(root.parent).as_posix()
    table[rel] = {'bytes': len(data), 'sha256': _sha256(data)}
  return table


def _body_digest(manifest: dict) -> str:
  """SHA-256 of the manifest without its own digest (canonical JSON)."""
  body = dict(manifest)
  integrity = dict(body.pop(_INTEGRITY, {}))
  integrity.pop('manifest_sha256', None)
  body[_INTEGRITY] = integrity
  return _sha256(json.dumps(body, sort_keys=True).encode())


def _verify(path: pathlib.Path, manifest: dict) -> None:
  """Raises ValueError naming the first file that does not match."""
  integrity = manifest.get(_INTEGRITY)
  if integrity is None:
    return  # written before checkpoints carried checksums
  if _body_digest(manifest) != integrity.get('manifest_sha256'):
    raise ValueError(
        f'{path}: {_MANIFEST} is damaged (its contents do not match its '
        'checksum)'
    )
  want = integrity.get('files', {})
  state = path / _STATE
  have = _file_table(state) if state.is_dir() else {}
  for rel, entry in want.items():
    if rel not in have:
      raise ValueError(f'{path}: {rel} is missing')
    if have[rel]['bytes'] != entry['bytes']:
      raise ValueError(
          f'{path}: {rel} is damaged ({have[rel]["bytes"]} bytes, expected '
          f'{entry["bytes"]})'
      )
    if have[rel]['sha256'] != entry['sha256']:
      raise ValueError(f'{path}: {rel} is damaged (SHA-256 differs)')
  extra = sorted(set(have) - set(want))
  if extra:
    raise ValueError(f'{path}: {extra[0]} was not written by save')


def _read_checked(path: pathlib.Path) -> dict:
  file = path / _MANIFEST
  try:
    manifest = json.loads(file.read_text())
  except FileNotFoundError:
    raise ValueError(f'{path}: {_MANIFEST} is missing') from None
  except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(
        f'{path}: {_MANIFEST} is damaged (not readable JSON: {e})'
    ) from None
  if not isinstance(manifest, dict):
    raise ValueError(f'{path}: {_MANIFEST} is damaged (not a JSON object)')
  _verify(path, manifest)
  return manifest


def save(directory, tree: Any, *, manifest: dict | None = None) -> None:
  """Writes ``tree`` (and ``manifest``) to ``directory`` atomically.

  Args:
    directory: destination; an existing checkpoint there is replaced only
      once the new one is completely written. Anything else there (a file,
      a folder with other contents) is refused, never replaced.
    tree: a pytree of arrays (e.g. ``LearnedMapParams``, ``OracleParams``).
    manifest: JSON-serialisable metadata (arrays become lists); ``{}`` when
      None.

  Raises:
    TypeError: if ``manifest`` is not JSON-serialisable (nothing is written).
    ValueError: ``directory`` holds something other than a checkpoint.
  """
  path, old = _paths(directory)
  if path.exists() and not (path / _MANIFEST).is_file():
    if not path.is_dir() or any(path.iterdir()):
      raise ValueError(
          f'{path}: exists and is not a saved checkpoint (no {_MANIFEST}); '
          'nothing was written: choose a new folder or remove it'
      )
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
    body = json.loads(text)
    body[_INTEGRITY] = {'files': _file_table(tmp / _STATE)}
    body[_INTEGRITY]['manifest_sha256'] = _body_digest(body)
    (tmp / _MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True))
    os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes 0700
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
  if (path / _MANIFEST).exists():
    _read_checked(path)  # names a missing or damaged file in one line
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

  The stored ``integrity`` entry (file sizes and checksums) is checked and
  left out of the result.

  Raises:
    ValueError: in one line naming the file that is missing, damaged or
      was not written by :func:`save`.
  """
  manifest = _read_checked(_live(directory))
  manifest.pop(_INTEGRITY, None)
  return manifest
