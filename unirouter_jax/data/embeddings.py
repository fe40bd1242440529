"""User prompt embeddings (``.npy``) aligned with a loaded :class:`Dataset`.

The rows of the file follow the prompts of the *data file*, in file order:
one row per prompt as read, before the loader dropped unlabelled prompts or
merged repeated texts (``dedup=True``). The rows of the prompts the dataset
kept are selected (``Dataset.source_row_n``), so a file with one row per
prompt of the data file is accepted whatever the dedup policy. A file with
one row per prompt of the loaded dataset (rows in ``dataset.prompt_ids``
order) is accepted too.
"""

from __future__ import annotations

import numpy as np

from unirouter_jax.data import dataset as dataset_lib


def _expected(dataset: dataset_lib.Dataset) -> tuple[int | None, int]:
  """(prompts of the data file or None, prompts of the dataset)."""
  rows = dataset.provenance.get("dedup", {}).get("rows")
  return (None if dataset.source_row_n is None else rows), dataset.num_prompts


def load_embeddings_npy(path: str, dataset: dataset_lib.Dataset) -> np.ndarray:
  """Reads a user ``.npy`` of prompt embeddings aligned with ``dataset``.

  Args:
    path: ``.npy`` file holding a ``[r, d]`` float array: ``r`` is the number
      of prompts of the data file (``dataset.provenance["dedup"]["rows"]``;
      rows in file order) or ``dataset.num_prompts`` (rows in the order of
      ``dataset.prompt_ids``).
    dataset: the dataset the rows belong to.

  Returns:
    ``[n, d]`` float32 embeddings, row ``i`` for ``dataset.prompt_ids[i]``.
  """
  src = str(path)
  try:
    emb = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise dataset_lib.DataError(f"cannot read embeddings: {e}", file=src) from e
  if emb.ndim != 2:
    raise dataset_lib.DataError(
        f"expected a [n, d] array, got shape {emb.shape}", file=src
    )
  if not (
      np.issubdtype(emb.dtype, np.floating)
      or np.issubdtype(emb.dtype, np.integer)
  ):
    raise dataset_lib.DataError(
        f"expected a float array, got dtype {emb.dtype}", file=src
    )
  total, n = _expected(dataset)
  r = emb.shape[0]
  data_src = dataset.provenance.get("source", dataset.name)
  pick_n = None
  if total is not None and r == total:
    rows_n = dataset.source_row_n
    if not np.array_equal(rows_n, np.arange(total)):
      pick_n = rows_n
  elif r != n:
    if total is None:
      msg = f"{r} embedding rows but dataset {dataset.name!r} has {n} prompts"
    else:
      msg = (
          f"{r} embedding rows, expected {total} (one per prompt of "
          f"{data_src}, in file order)"
      )
      if n != total:
        msg += f" or {n} (one per prompt of the loaded dataset)"
    raise dataset_lib.DataError(msg, file=src)
  sel = emb if pick_n is None else emb[pick_n]
  bad = ~np.isfinite(sel).all(axis=1)
  if bad.any():
    i = int(np.argmax(bad))
    raise dataset_lib.DataError(
        "non-finite embedding",
        file=src,
        row=int(i if pick_n is None else pick_n[i]) + 1,
        prompt_id=str(dataset.prompt_ids[i]),
    )
  return sel.astype(np.float32, copy=False)
