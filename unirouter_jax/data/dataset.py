"""The routing dataset type, its validation, and the shared assembly step.

Axes: ``n`` prompts, ``m`` LLMs. Every loader parses its own file layout into
host arrays and hands them to :func:`assemble`, which applies the same checks
and clean-ups everywhere:

* labels must lie in ``[0, 1]`` (``NaN`` marks a missing label);
* every LLM needs at least one label, every cost must be finite and ``>= 0``;
* duplicate prompt ids fail (or get a ``#k`` suffix when the loader says so);
* prompts with the same text are kept (the default for user files) or merged
  into the first copy (``dedup=True``, what the bundled sets use);
* prompts without any label are dropped;
* all of it is counted in ``provenance["dedup"]`` and logged.

Failures raise :class:`DataError`, a ``ValueError`` that names the file, the
1-based line (as an editor shows it; see :mod:`locate`), the column and the
prompt id of the first bad value.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from absl import logging

from unirouter_jax.data import locate

# Where the bundled, gzip-compressed data sets live (package data).
DATASETS_DIR = pathlib.Path(__file__).resolve().parents[1] / "datasets"


class DataError(ValueError):
  """A data file is malformed; the message names file, line, column and id.

  ``line`` is 1-based as an editor shows it (a CSV header is line 1);
  ``row`` is the 1-based record of a file without lines (``.pkl``,
  ``.parquet``, ``.npy``). The message reads e.g. ``file mine.csv, line 3
  (prompt id 'p1'), column 'gpt-4': label 1.5 outside [0, 1]``.
  """

  def __init__(
      self,
      message: str,
      *,
      file: str | None = None,
      column: str | None = None,
      line: int | None = None,
      row: int | None = None,
      prompt_id: str | None = None,
      id_name: str = "prompt id",
  ):
    self.file, self.column, self.line, self.row = file, column, line, row
    self.prompt_id = prompt_id
    where = []
    if file is not None:
      where.append(f"file {file}")
    at = f"line {line}" if line is not None else None
    at = f"row {row}" if at is None and row is not None else at
    if prompt_id is not None:
      ident = f"{id_name} {prompt_id!r}"
      at = ident if at is None else f"{at} ({ident})"
    if at is not None:
      where.append(at)
    if column is not None:
      where.append(f"column {column!r}")
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
    source_row_n: ``[n]`` int, the position of each prompt among the
      ``provenance["dedup"]["rows"]`` prompts of the data file(s) as read
      (before unlabelled or merged rows were dropped); None when the dataset
      was not built by a loader. :func:`load_embeddings_npy` uses it.
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
  source_row_n: np.ndarray | None = None

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
        source_row_n=None
        if self.source_row_n is None
        else self.source_row_n[p],
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
    rows = self.source_row_n
    if rows is not None and rows.shape != (n,):
      raise DataError(f"source_row_n has shape {rows.shape}, expected ({n},)")
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


def location(
    where: locate.Where | None,
    i: int,
    field: Any = None,
    ids: Sequence[Any] | None = None,
    id_name: str = "prompt id",
) -> dict[str, Any]:
  """DataError keywords for item ``i``: its file location and its id."""
  kw = {} if where is None else dict(where(i, field))
  if ids is not None:
    kw.update(prompt_id=str(ids[i]), id_name=id_name)
  return kw


def check_unit_interval(
    values: np.ndarray,
    *,
    column: str,
    where: locate.Where | None,
    ids: Sequence[Any] | None = None,
    field: Any = "column",
    what: str = "label",
    id_name: str = "prompt id",
) -> None:
  """Raises DataError at the first finite value outside [0, 1].

  Args:
    values: ``[r]`` float, NaN marks a missing label.
    column: column name reported in the error.
    where: locator of item ``i`` (see :mod:`locate`); None = no location.
    ids: ``[r]`` ids quoted in the error, or None.
    field: the file column (or JSON key) holding the values, for the line;
      default ``column``.
    what: what the values are, for the message.
    id_name: what the ids are, for the message.
  """
  bad = ~np.isnan(values) & ((values < 0) | (values > 1))
  if bad.any():
    i = int(np.argmax(bad))
    field = column if field == "column" else field
    raise DataError(
        f"{what} {plain_number(values[i])} outside [0, 1]",
        column=column,
        **location(where, i, field, ids, id_name),
    )


def check_costs(
    values: np.ndarray,
    *,
    column: str,
    where: locate.Where | None,
    ids: Sequence[Any] | None = None,
    field: Any = "column",
    id_name: str = "prompt id",
) -> None:
  """Raises DataError at the first missing, infinite or negative cost.

  Arguments as for :func:`check_unit_interval`.
  """
  bad = ~np.isfinite(values) | (values < 0)
  if bad.any():
    i = int(np.argmax(bad))
    field = column if field == "column" else field
    raise DataError(
        f"cost {_cost_problem(values[i])}; costs must be finite and >= 0",
        column=column,
        **location(where, i, field, ids, id_name),
    )


def _cost_problem(v: float) -> str:
  return "missing" if np.isnan(v) else f"invalid ({plain_number(v)})"


def plain_number(v: Any) -> str:
  """``1.5``, ``-1``, ``1.0000001``, ``inf``: as typed, no numpy repr."""
  f = float(v)
  return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


def numeric_column(
    raw: pd.Series,
    *,
    column: str,
    where: locate.Where | None,
    ids: Sequence[Any] | None = None,
    field: Any = "column",
) -> np.ndarray:
  """``[r]`` float64 of a column, NaN where empty; DataError on non-numbers."""
  vals = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
  bad = np.isnan(vals) & raw.notna().to_numpy()
  if bad.any():
    i = int(np.argmax(bad))
    field = column if field == "column" else field
    raise DataError(
        f"not a number: {_plain(raw.iloc[i])}",
        column=column,
        **location(where, i, field, ids, "prompt id"),
    )
  return vals


def _plain(v: Any) -> str:
  """A value as the file shows it: strings quoted, no numpy reprs."""
  return repr(v.item() if isinstance(v, np.generic) else v)


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


def _repeated_texts(texts: np.ndarray, rows: np.ndarray) -> np.ndarray:
  """``[n]`` bool: rows (among ``rows``) whose text an earlier one has."""
  # A set of the (shared) str objects: no second copy of the text.
  seen: set[Any] = set()
  out = np.zeros(texts.shape[0], dtype=bool)
  for i in np.flatnonzero(rows).tolist():
    t = texts[i]
    out[i] = t in seen
    seen.add(t)
  return out


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
    dedup: bool = False,
    where: locate.Where | None = None,
    id_field: str = "prompt_id",
) -> Dataset:
  """Validates raw arrays and builds a :class:`Dataset`.

  Prompts without any label are dropped. Prompts whose text repeats an
  earlier (labelled) prompt are kept (``dedup=False``, the default for user
  files) or merged into the first copy (``dedup=True``). Either way
  ``provenance["dedup"]`` records the counts: ``policy`` (``"keep"`` or
  ``"merge"``), ``rows`` (prompts read), ``kept``, ``dropped``,
  ``duplicate_text_rows``, ``dropped_duplicate_text``, ``dropped_unlabeled``,
  ``duplicate_ids`` (the id policy), ``renamed`` and the id lists
  ``duplicate_text_ids``, ``dropped_unlabeled_ids``,
  ``renamed_duplicate_ids``.

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
    dedup: merge prompts with identical text (first occurrence kept).
    where: locator of prompt ``i`` in its file (:mod:`locate`), for errors.
    id_field: the file column holding the ids, for errors.

  Returns:
    The validated Dataset; ``source_row_n`` maps its prompts to the ``n``
    given here.
  """
  prov = {"source": source, **provenance}
  where = where or locate.fixed(file=source)
  ids = np.array([str(x) for x in prompt_ids], dtype=object)
  texts = np.asarray(prompts, dtype=object)
  n, m = ids.shape[0], len(llm_names)
  if n == 0:
    raise DataError("no prompts (empty file?)", file=source)
  q = np.asarray(quality_nm, dtype=np.float64).reshape(n, m)
  c = np.asarray(cost_nm, dtype=np.float64)
  task_arr = None if tasks is None else np.asarray(tasks, dtype=object)
  if len(set(llm_names)) != m:
    dup = next(x for x in llm_names if list(llm_names).count(x) > 1)
    raise DataError("duplicate LLM name", file=source, column=dup)
  empty = np.isnan(q).all(axis=0)
  if empty.any():
    j = int(np.argmax(empty))
    raise DataError("LLM has no labels", file=source, column=llm_names[j])
  for j, llm in enumerate(llm_names):
    check_unit_interval(q[:, j], column=llm, where=where, ids=ids)
  if c.ndim == 1:  # one cost per LLM: no row to point at
    for j, llm in enumerate(llm_names):
      if not (np.isfinite(c[j]) and c[j] >= 0):
        raise DataError(
            f"cost {_cost_problem(c[j])}; costs must be finite and >= 0",
            file=source,
            column=llm,
        )
    c = np.broadcast_to(c, (n, m))
  else:
    c = c.reshape(n, m)
    for j, llm in enumerate(llm_names):
      check_costs(
          c[:, j], column=f"cost of {llm}", where=where, ids=ids, field=None
      )

  labelled = ~np.isnan(q).all(axis=1)
  dup_text = _repeated_texts(texts, labelled)
  keep = labelled & ~dup_text if dedup else labelled
  rows_n = np.flatnonzero(keep)
  report: dict[str, Any] = {
      "policy": "merge" if dedup else "keep",
      "rows": n,
      "kept": int(rows_n.shape[0]),
      "dropped": int(n - rows_n.shape[0]),
      "duplicate_text_rows": int(dup_text.sum()),
      "dropped_duplicate_text": int(dup_text.sum()) if dedup else 0,
      "dropped_unlabeled": int((~labelled).sum()),
      "duplicate_ids": duplicate_ids,
      "renamed": 0,
      "duplicate_text_ids": ids[dup_text].tolist(),
      "dropped_unlabeled_ids": ids[~labelled].tolist(),
      "renamed_duplicate_ids": [],
  }
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
              column=id_field,
              **where(int(rows_n[i]), id_field),
          )
        seen.add(pid)
    ids, renamed = _suffix_duplicates(ids)
    report.update(renamed=len(renamed), renamed_duplicate_ids=renamed)
  if report["dropped"] or report["duplicate_text_rows"] or report["renamed"]:
    logging.info(
        "%s: %d of %d prompts kept (dedup policy %r; %d rows repeat an "
        "earlier text, %d unlabelled, %d ids renamed)",
        source,
        report["kept"],
        n,
        report["policy"],
        report["duplicate_text_rows"],
        report["dropped_unlabeled"],
        report["renamed"],
    )
  prov["dedup"] = report
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
      source_row_n=rows_n,
  )
  return ds.validate()


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
