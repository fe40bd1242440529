"""Precomputed MiniLM embeddings of the bundled datasets.

``unirouter_jax/datasets/embeddings/<dataset>.<policy>.npz`` holds

  ``emb``         ``[n, 384]`` float16 embeddings,
  ``prompt_ids``  ``[n]`` str,
  ``meta``        a JSON string: model id, weights sha256, policy, and
                  ``identical_policies`` (the policies that give the same rows
                  because no prompt is truncated).

``python -m unirouter_jax.encoder.precompute --dataset NAME --policy P``
rebuilds a file.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any

import numpy as np

from unirouter_jax.encoder import minilm, tokenize

EMBEDDINGS_DIR = pathlib.Path(__file__).resolve().parents[1] / (
    'datasets/embeddings'
)


def npz_path(name: str, policy: str) -> pathlib.Path:
  return EMBEDDINGS_DIR / f'{name}.{policy}.npz'


def write_npz(
    path: os.PathLike,
    emb_nd: np.ndarray,
    prompt_ids_n: np.ndarray,
    meta: dict[str, Any],
) -> None:
  """Writes the npz atomically (temp file in the same folder + rename)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, suffix='.npz.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      np.savez_compressed(
          f,
          emb=np.asarray(emb_nd, np.float16),
          prompt_ids=np.asarray([str(x) for x in prompt_ids_n]),
          meta=np.asarray(json.dumps(meta, sort_keys=True)),
      )
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; this is package data.
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def read_npz(path: os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
  """Returns ``emb [n, d] float16``, ``prompt_ids [n]``, ``meta``."""
  with np.load(path, allow_pickle=False) as z:
    return z['emb'], z['prompt_ids'], json.loads(str(z['meta']))


def _find(name: str, policy: str) -> pathlib.Path:
  path = npz_path(name, policy)
  if path.exists():
    return path
  # A file made under another policy serves when no prompt was truncated.
  for other in tokenize.POLICIES:
    alt = npz_path(name, other)
    if alt.exists() and policy in read_npz(alt)[2].get(
        'identical_policies', ()
    ):
      return alt
  have = sorted(p.name for p in EMBEDDINGS_DIR.glob(f'{name}.*.npz'))
  raise FileNotFoundError(
      f'No bundled embeddings for dataset {name!r} with policy {policy!r} '
      f'(have: {have or "none"}). Build them with: python -m '
      f'unirouter_jax.encoder.precompute --dataset {name} --policy {policy}'
  )


def bundled_embeddings(
    dataset: Any, policy: str = minilm.DEFAULT_POLICY
) -> np.ndarray:
  """Precomputed MiniLM rows aligned to ``dataset.prompt_ids``.

  Args:
    dataset: has ``name`` and ``prompt_ids`` ``[n]`` (e.g. ``data.load(...)``).
    policy: truncation policy.

  Returns:
    ``[n, d]`` float32.

  Raises:
    FileNotFoundError: no file for this dataset and policy.
    ValueError: some prompt ids of ``dataset`` are not in the file.
  """
  tokenize.check_policy(policy)
  path = _find(dataset.name, policy)
  emb_nd, ids_n, _ = read_npz(path)
  index = {str(p): i for i, p in enumerate(ids_n)}
  want = [str(p) for p in dataset.prompt_ids]
  missing = [p for p in want if p not in index]
  if missing:
    raise ValueError(
        f'{path.name}: {len(missing)} of {len(want)} prompt ids of dataset '
        f'{dataset.name!r} are missing, e.g. {missing[:3]}; rebuild with '
        'python -m unirouter_jax.encoder.precompute --dataset '
        f'{dataset.name} --policy {policy}'
    )
  return emb_nd[[index[p] for p in want]].astype(np.float32)
