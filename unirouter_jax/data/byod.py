"""Bring your own data: a wide CSV or a long CSV/JSONL, plus a cost table.

Wide (RouterBench-style) CSV: a ``prompt`` column, one quality column per LLM
(values in ``[0, 1]``, empty = missing), optional ``<LLM>|total_cost`` columns
(cost of that LLM on that prompt), optional ``prompt_id``/``sample_id`` and
``eval_name``/``task`` columns.

Long CSV/JSONL: one row per (prompt, LLM) with ``prompt_id, prompt, model,
quality`` and an optional ``cost`` (and optional ``task``). A (prompt, LLM)
pair without a row is a missing label; its cost, when costs vary per prompt,
is the LLM's mean cost.

Without cost columns, pass ``cost_table``: a mapping ``{llm: cost}`` or a
CSV with columns ``model, cost``. See ``docs/data_formats.md``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from unirouter_jax.data import dataset as dataset_lib
from unirouter_jax.data import locate, routerbench

LONG_COLUMNS = ("prompt_id", "prompt", "model", "quality")


def read_cost_table(
    table: str | pathlib.Path | Mapping[str, float] | None,
) -> dict[str, float] | None:
  """Reads a per-LLM cost table (mapping or CSV ``model, cost``)."""
  if table is None:
    return None
  if isinstance(table, Mapping):
    out = {}
    for k, v in table.items():
      try:
        out[str(k)] = float(v)
      except (TypeError, ValueError) as e:
        raise dataset_lib.DataError(
            f"cost_table: cost {v!r} of {str(k)!r} is not a number"
        ) from e
    return out
  path = pathlib.Path(table)
  df = read_table(path)
  for col in ("model", "cost"):
    if col not in df.columns:
      raise dataset_lib.DataError("missing column", file=str(path), column=col)
  where = locate.locator(path)
  models = df["model"].astype(str).tolist()
  cost = dataset_lib.numeric_column(df["cost"], column="cost", where=where)
  dataset_lib.check_costs(
      cost, column="cost", where=where, ids=models, id_name="model"
  )
  return dict(zip(models, cost.tolist(), strict=True))


def read_table(path: pathlib.Path) -> pd.DataFrame:
  """Reads ``.csv[.gz]`` or ``.jsonl[.gz]``; DataError if missing or empty."""
  if not path.exists():
    raise dataset_lib.DataError("file not found", file=str(path))
  try:
    if ".jsonl" in path.name or ".json" in path.name:
      df = pd.read_json(path, lines=".jsonl" in path.name, dtype=False)
    else:
      df = pd.read_csv(path)
  except (pd.errors.EmptyDataError, ValueError) as e:
    if path.stat().st_size == 0 or isinstance(e, pd.errors.EmptyDataError):
      raise dataset_lib.DataError("empty file", file=str(path)) from e
    raise dataset_lib.DataError(f"cannot parse: {e}", file=str(path)) from e
  if df.shape[0] == 0:
    raise dataset_lib.DataError("no rows (empty file)", file=str(path))
  return df


def load_wide_csv(
    path: str | pathlib.Path,
    *,
    name: str | None = None,
    llm_names: Sequence[str] | None = None,
    cost_table: str | pathlib.Path | Mapping[str, float] | None = None,
    cost_unit: str = "usd_per_query",
    dedup: bool = False,
) -> dataset_lib.Dataset:
  """Loads a user's wide (RouterBench-style) CSV; see module docstring.

  Args:
    path: the CSV (optionally gzip-compressed).
    name: dataset name; default the file stem.
    llm_names: quality columns to use; None = all non-reserved columns.
    cost_table: per-LLM costs when there are no ``|total_cost`` columns.
    cost_unit: unit of the costs.
    dedup: merge rows with the same prompt text (default: keep every row).

  Returns:
    Dataset with ``[n, m]`` quality and costs.
  """
  path = pathlib.Path(path)
  where = locate.locator(path)
  arrays = routerbench.wide_frame_arrays(
      read_table(path),
      str(path),
      llm_names=llm_names,
      cost_table=read_cost_table(cost_table),
      where=where,
  )
  return dataset_lib.assemble(
      name=name or path.name.split(".")[0],
      source=str(path),
      cost_unit=cost_unit,
      provenance={"format": "wide"},
      dedup=dedup,
      where=where,
      **arrays,
  )


def pivot_long(
    pid_r: np.ndarray, llm_r: np.ndarray, values_r: np.ndarray, n: int, m: int
) -> np.ndarray:
  """Scatters long rows into ``[n, m]``, NaN where absent, max over repeats.

  Args:
    pid_r: ``[r]`` int prompt index per row.
    llm_r: ``[r]`` int LLM index per row.
    values_r: ``[r]`` float values (NaN ignored).
    n: number of prompts.
    m: number of LLMs.
  """
  out = np.full(n * m, -np.inf)
  ok = ~np.isnan(values_r)
  np.maximum.at(out, pid_r[ok] * m + llm_r[ok], values_r[ok])
  out[np.isneginf(out)] = np.nan
  return out.reshape(n, m)


def load_long(
    path: str | pathlib.Path,
    *,
    name: str | None = None,
    cost_table: str | pathlib.Path | Mapping[str, float] | None = None,
    cost_unit: str = "usd_per_query",
    dedup: bool = False,
) -> dataset_lib.Dataset:
  """Loads a user's long CSV/JSONL (``prompt_id, prompt, model, quality[,
  cost]``); see module docstring.

  Args:
    path: ``.csv[.gz]`` or ``.jsonl[.gz]`` file.
    name: dataset name; default the file stem.
    cost_table: per-LLM costs, used when there is no ``cost`` column.
    cost_unit: unit of the costs.
    dedup: merge prompt ids with the same text (default: keep them all).

  Returns:
    Dataset; prompts in order of first appearance, LLMs likewise.
  """
  path = pathlib.Path(path)
  src = str(path)
  df = read_table(path)
  for col in LONG_COLUMNS:
    if col not in df.columns:
      raise dataset_lib.DataError("missing column", file=src, column=col)
  where = locate.locator(path)
  pid = df["prompt_id"].astype(str)
  model = df["model"].astype(str)
  ids_r = pid.tolist()
  quality = dataset_lib.numeric_column(
      df["quality"], column="quality", where=where, ids=ids_r
  )
  dataset_lib.check_unit_interval(
      quality, column="quality", where=where, ids=ids_r
  )
  pair = pid + "\x00" + model
  if pair.duplicated().any():
    i = int(np.argmax(pair.duplicated().to_numpy()))
    raise dataset_lib.DataError(
        f"second label for prompt {pid.iloc[i]!r} and model {model.iloc[i]!r}",
        column="model",
        **where(i, "model"),
    )
  first = ~pid.duplicated()
  texts = df.loc[first, "prompt"]
  clash = ~df[["prompt_id", "prompt"]].astype(str).duplicated() & ~first
  if clash.any():
    i = int(np.argmax(clash.to_numpy()))
    earlier = where(int(np.argmax((pid == pid.iloc[i]).to_numpy())), "prompt")
    at = (
        f"line {earlier['line']}"
        if "line" in earlier
        else f"row {earlier['row']}"
    )
    raise dataset_lib.DataError(
        f"the prompt text differs from the one on {at}",
        column="prompt",
        **dataset_lib.location(where, i, "prompt", ids_r),
    )
  ids = pd.Index(pid[first])
  llms = pd.Index(model[~model.duplicated()])
  pid_r = ids.get_indexer(pid)
  llm_r = llms.get_indexer(model)
  n, m = len(ids), len(llms)
  q_nm = pivot_long(pid_r, llm_r, quality, n, m)
  table = read_cost_table(cost_table)
  if "cost" in df.columns:
    cost = dataset_lib.numeric_column(
        df["cost"], column="cost", where=where, ids=ids_r
    )
    dataset_lib.check_costs(cost, column="cost", where=where, ids=ids_r)
    c_nm = pivot_long(pid_r, llm_r, cost, n, m)
    c_nm = dataset_lib.fill_missing_costs(c_nm)
    per_prompt = bool(np.any(c_nm != c_nm[:1]))
  elif table is not None:
    absent = [x for x in llms if x not in table]
    if absent:
      raise dataset_lib.DataError(
          "LLM missing from the cost table", file=src, column=absent[0]
      )
    c_nm = np.array([table[x] for x in llms], dtype=np.float64)
    per_prompt = False
  else:
    raise dataset_lib.DataError(
        "no costs: add a 'cost' column or pass cost_table=",
        file=src,
        column="cost",
    )
  tasks = df.loc[first, "task"].astype(str).tolist() if "task" in df else None
  return dataset_lib.assemble(
      name=name or path.name.split(".")[0],
      source=src,
      prompt_ids=ids.tolist(),
      prompts=texts.tolist(),
      tasks=tasks,
      llm_names=llms.tolist(),
      quality_nm=q_nm,
      cost_nm=c_nm,
      per_prompt_cost=per_prompt,
      cost_unit=cost_unit,
      provenance={"format": "long"},
      dedup=dedup,
      where=locate.locator(path, np.flatnonzero(first.to_numpy())),
  )
