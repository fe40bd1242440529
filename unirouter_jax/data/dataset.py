"""The routing dataset type, its validation, and the shared assembly step.

Axes: ``n`` prompts, ``m`` LLMs. Every loader parses its own file layout into
host arrays and hands them to :func:`assemble`, which applies the same checks
and clean-ups everywhere:

* labels must lie in ``[0, 1]`` (``NaN`` marks a missing label);
* every LLM needs at least one label, every cost must be finite and ``>= 0``;
* duplicate prompt ids fail (or get a ``#k`` suffix when the loader says so);
* duplicated prompt texts are de-duplicated (first occurrence kept), logged
  and recorded in ``provenance["dedup"]``;
* prompts without any label are dropped and recorded.

Failures raise :class:`DataError`, a ``ValueError`` that names the file, the
column and the first bad row.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import logging

# Where the bundled, gzip-compressed data sets live (package data).
DATASETS_DIR = pathlib.Path(__file__).resolve().parents[1] / "datasets"


class DataError(ValueError):
  """A data file is malformed; the message names file, column and row."""

  def __init__(
      self,
      message: str,
      *,
      file: str | None = None,
      column: str | None = None,
      row: int | str | None = None,
  ):
    self.file, self.column, self.row = file, column, row
    where = []
    if file is not None:
      where.append(f"file {file}")
    if column is not None:
      where.append(f"column {column!r}")
    if row is not None:
      where.append(f"row {row}")
    prefix = ", ".join(where)
    super().__init__(f"{prefix}: {message}" if prefix else message)


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A routing dataset on the host (numpy). Axes: n prompts, m LLMs.

  Attributes:
    name: short name of the dataset (registry name or file stem).
    prompt_ids: ``[n]`` str, unique.
    prompts: ``[n]`` str, the prompt texts (the only copy kept).
    tasks: ``[n]`` str benchmark/task name, or None.
    llm_names: ``[m]`` LLM names.
    quality_nm: ``[n, m]`` float32 in ``[0, 1]``; 0.0 where missing.
    label_mask_nm: ``[n, m]`` bool, True where a label exists.
    cost_nm: ``[n, m]`` float32 ``>= 0``; per-LLM costs are broadcast.
    per_prompt_cost: True when ``cost_nm`` really varies per prompt.
    cost_unit: e.g. ``"usd_per_query"`` or ``"params_billion"``.
    provenance: source files, licence, price table, dedup report, notes.
  """

  name: str
  prompt_ids: np.ndarray
  prompts: np.ndarray
  tasks: np.ndarray | None
  llm_names: tuple[str, ...]
  quality_nm: np.ndarray
  label_mask_nm: np.ndarray
  cost_nm: np.ndarray
  per_prompt_cost: bool
  cost_unit: str
  provenance: dict

  @property
  def num_prompts(self) -> int:
    return int(self.prompt_ids.shape[0])

  @property
  def num_llms(self) -> int:
    return len(self.llm_names)

  def subset(self, prompt_idx=None, llm_idx=None) -> Dataset:
    """Returns the rows ``prompt_idx`` and columns ``llm_idx`` (None = all).

    Indices may be integer arrays or boolean masks of length n (resp. m).
    """
    p = slice(None) if prompt_idx is None else np.asarray(prompt_idx)
    q = slice(None) if llm_idx is None else np.asarray(llm_idx)
    names = np.asarray(self.llm_names, dtype=object)[q]
    return dataclasses.replace(
        self,
        prompt_ids=self.prompt_ids[p],
        prompts=self.prompts[p],
        tasks=None if self.tasks is None else self.tasks[p],
        llm_names=tuple(str(x) for x in names),
        quality_nm=self.quality_nm[p][:, q],
        label_mask_nm=self.label_mask_nm[p][:, q],
        cost_nm=self.cost_nm[p][:, q],
    )

  def validate(self) -> Dataset:
    """Checks shapes, dtypes and ranges; returns self or raises DataError."""
    n, m = self.num_prompts, self.num_llms
    src = self.provenance.get("source", self.name)
    if n == 0 or m == 0:
      raise DataError(f"empty dataset ({n} prompts, {m} LLMs)", file=src)
    for field in ("prompts", "quality_nm", "label_mask_nm", "cost_nm"):
      arr = getattr(self, field)
      if arr.shape[0] != n:
        raise DataError(f"{field} has {arr.shape[0]} rows, expected {n}")
    if self.tasks is not None and self.tasks.shape != (n,):
      raise DataError(f"tasks has shape {self.tasks.shape}, expected ({n},)")
    for field in ("quality_nm", "label_mask_nm", "cost_nm"):
      if getattr(self, field).shape != (n, m):
        raise DataError(f"{field} shape {getattr(self, field).shape}")
    if self.quality_nm.dtype != np.float32 or self.cost_nm.dtype != np.float32:
      raise DataError("quality_nm and cost_nm must be float32")
    if self.label_mask_nm.dtype != np.bool_:
      raise DataError("label_mask_nm must be bool")
    if len(set(self.prompt_ids.tolist())) != n:
      raise DataError("prompt ids are not unique", file=src)
    q = self.quality_nm
    if not np.all((q >= 0) & (q <= 1)):
      raise DataError("quality_nm outside [0, 1]", file=src)
    if np.any(q[~self.label_mask_nm] != 0):
      raise DataError("quality_nm must be 0.0 where label_mask_nm is False")
    if not np.all(np.isfinite(self.cost_nm) & (self.cost_nm >= 0)):
      raise DataError("cost_nm must be finite and >= 0", file=src)
    return self


def check_unit_interval(
    values: np.ndarray, *, file: str, column: str, ids: Sequence[Any]
) -> None:
  """Raises DataError at the first finite value outside [0, 1].

  Args:
    values: ``[r]`` float, NaN marks a missing label.
    file: file name reported in the error.
    column: column name reported in the error.
    ids: ``[r]`` prompt ids; the error gives the 0-based data row and id.
  """
  bad = ~np.isnan(values) & ((values < 0) | (values > 1))
  if bad.any():
    i = int(np.argmax(bad))
    raise DataError(
        f"label {float(values[i]):g} outside [0, 1]",
        file=file,
        column=column,
        row=_row(i, ids),
    )


def check_costs(
    values: np.ndarray, *, file: str, column: str, ids: Sequence[Any]
) -> None:
  """Raises DataError at the first missing, infinite or negative cost."""
  bad = ~np.isfinite(values) | (values < 0)
  if bad.any():
    i = int(np.argmax(bad))
    what = (
        "missing" if np.isnan(values[i]) else f"invalid ({float(values[i]):g})"
    )
    raise DataError(
        f"cost {what}; costs must be finite and >= 0",
        file=file,
        column=column,
        row=_row(i, ids),
    )


def _row(i: int, ids: Sequence[Any]) -> str:
  return f"{i} (prompt id {ids[i]!r})"


def _suffix_duplicates(ids: np.ndarray) -> tuple[np.ndarray, list[str]]:
  """Appends ``#k`` to the k-th repeat of an id (k >= 1)."""
  seen: dict[str, int] = {}
  out, renamed = [], []
  for pid in ids.tolist():
    k = seen.get(pid, 0)
    seen[pid] = k + 1
    out.append(pid if k == 0 else f"{pid}#{k}")
    if k:
      renamed.append(pid)
  return np.array(out, dtype=object), renamed


def assemble(
    *,
    name: str,
    source: str,
    prompt_ids: Sequence[Any],
    prompts: Sequence[str],
    tasks: Sequence[str] | None,
    llm_names: Sequence[str],
    quality_nm: np.ndarray,
    cost_nm: np.ndarray,
    per_prompt_cost: bool,
    cost_unit: str,
    provenance: dict,
    duplicate_ids: str = "error",
    dedupe_text: bool = True,
) -> Dataset:
  """Validates raw arrays and builds a :class:`Dataset`.

  Args:
    name: dataset name.
    source: file or folder reported in errors and provenance.
    prompt_ids: ``[n]`` ids (converted to str).
    prompts: ``[n]`` texts (kept by reference, not copied).
    tasks: ``[n]`` task names or None.
    llm_names: ``[m]`` names.
    quality_nm: ``[n, m]`` float, NaN where missing.
    cost_nm: ``[n, m]`` or ``[m]`` float, finite and ``>= 0``.
    per_prompt_cost: whether costs vary per prompt.
    cost_unit: unit string.
    provenance: dict merged into the dataset provenance.
    duplicate_ids: ``"error"`` (DataError) or ``"suffix"`` (rename repeats).
    dedupe_text: drop later copies of a repeated prompt text.

  Returns:
    The validated Dataset.
  """
  prov = {"source": source, **provenance}
  ids = np.array([str(x) for x in prompt_ids], dtype=object)
  texts = np.asarray(prompts, dtype=object)
  n, m = ids.shape[0], len(llm_names)
  if n == 0:
    raise DataError("no prompts (empty file?)", file=source)
  q = np.asarray(quality_nm, dtype=np.float64).reshape(n, m)
  c = np.asarray(cost_nm, dtype=np.float64)
  c = np.broadcast_to(c, (n, m)) if c.ndim == 1 else c.reshape(n, m)
  task_arr = None if tasks is None else np.asarray(tasks, dtype=object)
  if len(set(llm_names)) != m:
    dup = next(x for x in llm_names if list(llm_names).count(x) > 1)
    raise DataError("duplicate LLM name", file=source, column=dup)
  empty = np.isnan(q).all(axis=0)
  if empty.any():
    j = int(np.argmax(empty))
    raise DataError("LLM has no labels", file=source, column=llm_names[j])
  for j, llm in enumerate(llm_names):
    check_unit_interval(q[:, j], file=source, column=llm, ids=ids)
    check_costs(c[:, j], file=source, column=f"cost of {llm}", ids=ids)

  keep = np.ones(n, dtype=bool)
  dedup: dict[str, Any] = {}
  unlabeled = np.isnan(q).all(axis=1)
  if unlabeled.any():
    keep &= ~unlabeled
    dedup["dropped_unlabeled_ids"] = ids[unlabeled].tolist()
  if dedupe_text:
    # A set of the (shared) str objects: no second copy of the text.
    seen_text: set[str] = set()
    dup_rows = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(keep).tolist():
      t = texts[i]
      if t in seen_text:
        dup_rows[i] = True
      seen_text.add(t)
    if dup_rows.any():
      keep &= ~dup_rows
      dedup["dropped_duplicate_text_ids"] = ids[dup_rows].tolist()
  orig_row = np.flatnonzero(keep)
  if (~keep).any():
    ids, texts, q, c = ids[keep], texts[keep], q[keep], c[keep]
    task_arr = None if task_arr is None else task_arr[keep]
  if len(set(ids.tolist())) != ids.shape[0]:
    if duplicate_ids != "suffix":
      seen: set[str] = set()
      for i, pid in enumerate(ids.tolist()):
        if pid in seen:
          raise DataError(
              f"duplicate prompt id {pid!r}",
              file=source,
              column="prompt_id",
              row=f"{orig_row[i]} (prompt id {pid!r})",
          )
        seen.add(pid)
    ids, renamed = _suffix_duplicates(ids)
    dedup["renamed_duplicate_ids"] = renamed
  if dedup:
    logging.info("%s: de-duplication report %s", source, dedup)
    prov["dedup"] = dedup
  mask = ~np.isnan(q)
  ds = Dataset(
      name=name,
      prompt_ids=ids,
      prompts=texts,
      tasks=task_arr,
      llm_names=tuple(str(x) for x in llm_names),
      quality_nm=np.where(mask, q, 0.0).astype(np.float32),
      label_mask_nm=mask,
      cost_nm=np.ascontiguousarray(c, dtype=np.float32),
      per_prompt_cost=per_prompt_cost,
      cost_unit=cost_unit,
      provenance=prov,
  )
  return ds.validate()


def load_embeddings_npy(path: str, dataset: Dataset) -> np.ndarray:
  """Reads a user ``.npy`` of prompt embeddings aligned with ``dataset``.

  Args:
    path: ``.npy`` file holding a ``[n, d]`` float array, rows in the order
      of ``dataset.prompt_ids``.
    dataset: the dataset the rows belong to.

  Returns:
    ``[n, d]`` float32 embeddings.
  """
  try:
    emb = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise DataError(f"cannot read embeddings: {e}", file=str(path)) from e
  if emb.ndim != 2:
    raise DataError(
        f"expected a [n, d] array, got shape {emb.shape}", file=path
    )
  if emb.shape[0] != dataset.num_prompts:
    raise DataError(
        f"{emb.shape[0]} embedding rows but dataset {dataset.name!r} has "
        f"{dataset.num_prompts} prompts",
        file=str(path),
    )
  if not np.isfinite(emb).all():
    row = int(np.argmax(~np.isfinite(emb).all(axis=1)))
    raise DataError("non-finite embedding", file=str(path), row=row)
  return emb.astype(np.float32, copy=False)


def fill_missing_costs(cost_nm: np.ndarray) -> np.ndarray:
  """Fills NaN costs with the column (LLM) mean; all-NaN columns stay NaN.

  Args:
    cost_nm: ``[n, m]`` float with NaN where no cost was recorded.
  """
  known = ~np.isnan(cost_nm)
  count = known.sum(axis=0)
  mean = np.where(known, cost_nm, 0.0).sum(axis=0) / np.maximum(count, 1)
  mean = np.where(count > 0, mean, np.nan)
  return np.where(known, cost_nm, mean[None, :])
