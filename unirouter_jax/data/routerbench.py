"""RouterBench wide format: one row per prompt, one column per LLM.

Columns (upstream ``withmartian/routerbench``): ``sample_id``, ``prompt``,
``eval_name``, one quality column per LLM named by the LLM, one
``<LLM>|total_cost`` column per LLM (realised USD for that prompt), optional
``<LLM>|model_response`` and ``oracle_model_to_route_to``. The full pickles
(``routerbench_0shot.pkl`` / ``routerbench_5shot.pkl``) are pandas DataFrames
with these columns; the bundled subset is six ``.csv.gz`` files.

Upstream prompts are stored as a Python list literal (``"['text']"``) or a
list; the loader joins the list items with newlines.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from unirouter_jax.data import dataset as dataset_lib
from unirouter_jax.data import locate

COST_SUFFIX = "|total_cost"
RESERVED = ("sample_id", "prompt_id", "prompt", "eval_name", "task")
_IGNORED = ("oracle_model_to_route_to",)
LICENCE = "RouterBench (withmartian/routerbench): MIT"


def flatten_prompt(x: Any) -> str:
  """Joins a list prompt (or its Python literal) into one string."""
  if isinstance(x, (list, tuple)):
    return "\n".join(str(t) for t in x)
  s = str(x)
  if len(s) > 1 and s[0] == "[" and s[-1] == "]":
    try:
      v = ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
      return s
    if isinstance(v, list) and all(isinstance(t, str) for t in v):
      return "\n".join(v)
  return s


def wide_frame_arrays(
    df: pd.DataFrame,
    source: str,
    *,
    llm_names: Sequence[str] | None = None,
    cost_table: Mapping[str, float] | None = None,
    parse_list_prompts: bool = False,
    where: locate.Where | None = None,
) -> dict[str, Any]:
  """Parses a wide DataFrame into raw arrays for :func:`dataset.assemble`.

  Args:
    df: the frame; ``prompt`` required, ``sample_id``/``prompt_id`` and
      ``eval_name``/``task`` optional.
    source: file name for errors.
    llm_names: quality columns to use; None = every other column without
      ``|`` in its name.
    cost_table: per-LLM cost used when the ``|total_cost`` columns are absent.
    parse_list_prompts: flatten Python-list prompts (RouterBench).
    where: locator of row ``i`` in the file; default from ``source``.

  Returns:
    Dict with ``prompt_ids [n]``, ``prompts [n]``, ``tasks [n] | None``,
    ``llm_names [m]``, ``quality_nm [n, m]`` (NaN = missing), ``cost_nm``
    (``[n, m]`` or ``[m]``), ``per_prompt_cost`` and ``id_field`` (the id
    column).
  """
  where = where or locate.locator(source)
  if df.shape[0] == 0:
    raise dataset_lib.DataError("no rows (empty file)", file=source)
  if "prompt" not in df.columns:
    raise dataset_lib.DataError("missing column", file=source, column="prompt")
  cols = [str(c) for c in df.columns]
  if llm_names is None:
    skip = set(RESERVED) | set(_IGNORED)
    llm_names = [c for c in cols if c not in skip and "|" not in c]
  else:
    for llm in llm_names:
      if llm not in df.columns:
        raise dataset_lib.DataError("missing column", file=source, column=llm)
  if not llm_names:
    raise dataset_lib.DataError("no LLM quality columns", file=source)
  id_col = next((c for c in ("sample_id", "prompt_id") if c in cols), None)
  ids = (
      df[id_col].astype(str).tolist()
      if id_col
      else [str(i) for i in range(df.shape[0])]
  )
  # Ids made up from row numbers would only confuse next to a line number.
  quoted = ids if id_col else None
  task_col = next((c for c in ("eval_name", "task") if c in cols), None)
  tasks = df[task_col].astype(str).tolist() if task_col else None
  raw_prompts = df["prompt"].tolist()
  missing_text = [
      i
      for i, p in enumerate(raw_prompts)
      if not isinstance(p, (str, list, tuple))
  ]
  if missing_text:
    i = missing_text[0]
    raise dataset_lib.DataError(
        "missing prompt text",
        column="prompt",
        **dataset_lib.location(where, i, "prompt", quoted),
    )
  prompts = (
      [flatten_prompt(p) for p in raw_prompts]
      if parse_list_prompts
      else raw_prompts
  )

  def numeric(col):
    return dataset_lib.numeric_column(
        df[col], column=col, where=where, ids=quoted
    )

  quality = np.stack([numeric(c) for c in llm_names], axis=1)
  for j, c in enumerate(llm_names):
    dataset_lib.check_unit_interval(
        quality[:, j], column=c, where=where, ids=quoted
    )
  cost_cols = [c + COST_SUFFIX for c in llm_names]
  have = [c in df.columns for c in cost_cols]
  if all(have):
    cost = np.stack([numeric(c) for c in cost_cols], axis=1)
    for j, c in enumerate(cost_cols):
      dataset_lib.check_costs(cost[:, j], column=c, where=where, ids=quoted)
    per_prompt = True
  elif any(have) and cost_table is None:
    col = cost_cols[have.index(False)]
    raise dataset_lib.DataError("missing cost column", file=source, column=col)
  elif cost_table is not None:
    absent = [x for x in llm_names if x not in cost_table]
    if absent:
      raise dataset_lib.DataError(
          "LLM missing from the cost table", file=source, column=absent[0]
      )
    cost = np.array([float(cost_table[x]) for x in llm_names])
    per_prompt = False
  else:
    raise dataset_lib.DataError(
        f"no costs: add '<LLM>{COST_SUFFIX}' columns or pass cost_table=",
        file=source,
        column=llm_names[0] + COST_SUFFIX,
    )
  return dict(
      prompt_ids=ids,
      prompts=prompts,
      tasks=tasks,
      llm_names=list(llm_names),
      quality_nm=quality,
      cost_nm=cost,
      per_prompt_cost=per_prompt,
      id_field=id_col or "prompt_id",
  )


def _read_frame(path: pathlib.Path) -> pd.DataFrame:
  try:
    if path.suffix == ".pkl":
      df = pd.read_pickle(path)
      if not isinstance(df, pd.DataFrame):
        raise dataset_lib.DataError("pickle is not a DataFrame", file=str(path))
      return df
    return pd.read_csv(path)
  except pd.errors.EmptyDataError as e:
    raise dataset_lib.DataError("empty file", file=str(path)) from e


def load_routerbench(
    path: str | pathlib.Path | Sequence[str | pathlib.Path],
    *,
    name: str | None = None,
    llm_names: Sequence[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    dedup: bool = False,
) -> dataset_lib.Dataset:
  """Loads RouterBench pickles/CSVs (or a folder of them) into one Dataset.

  Args:
    path: a ``.pkl``, a ``.csv[.gz]``, a list of those, or a folder whose
      ``*.csv*`` / ``*.pkl`` files are concatenated (sorted by name).
    name: dataset name; defaults to the file or folder stem.
    llm_names: LLM columns to keep; None = all.
    provenance: extra provenance entries (e.g. licence of a bundled copy).
    dedup: merge prompts with the same text (the bundled subset does).

  Returns:
    Dataset with per-prompt realised USD costs (``per_prompt_cost=True``),
    ``tasks`` from ``eval_name`` and ids from ``sample_id``. Repeated ids with
    different texts get a ``#k`` suffix (recorded in provenance).
  """
  if isinstance(path, (str, pathlib.Path)):
    root = pathlib.Path(path)
    if root.is_dir():
      files = sorted(
          p for p in root.iterdir() if ".csv" in p.name or p.suffix == ".pkl"
      )
      if not files:
        raise dataset_lib.DataError("no .csv/.pkl files", file=str(root))
    else:
      files = [root]
  else:
    files = [pathlib.Path(p) for p in path]
    root = files[0].parent
  parts, wheres = [], []
  for f in files:
    if not f.exists():
      raise dataset_lib.DataError("file not found", file=str(f))
    wheres.append(locate.locator(f))
    parts.append(
        wide_frame_arrays(
            _read_frame(f),
            str(f),
            llm_names=llm_names,
            parse_list_prompts=True,
            where=wheres[-1],
        )
    )
  llms = parts[0]["llm_names"]
  for f, p in zip(files, parts, strict=True):
    if p["llm_names"] != llms:
      extra = sorted(set(p["llm_names"]) ^ set(llms))
      raise dataset_lib.DataError(
          "LLM columns differ from the first file",
          file=str(f),
          column=extra[0] if extra else None,
      )
  src = str(root if len(files) > 1 else files[0])
  prov = {
      "format": "routerbench",
      "files": [f.name for f in files],
      "licence": LICENCE,
      "cost": "realised USD per prompt from '<LLM>|total_cost' columns",
      **(provenance or {}),
  }
  return dataset_lib.assemble(
      name=name or pathlib.Path(src).name.split(".")[0],
      source=src,
      prompt_ids=[i for p in parts for i in p["prompt_ids"]],
      prompts=[t for p in parts for t in p["prompts"]],
      tasks=[t for p in parts for t in p["tasks"]]
      if parts[0]["tasks"]
      else None,
      llm_names=llms,
      quality_nm=np.concatenate([p["quality_nm"] for p in parts]),
      cost_nm=np.concatenate([p["cost_nm"] for p in parts]),
      per_prompt_cost=True,
      cost_unit="usd_per_query",
      provenance=prov,
      duplicate_ids="suffix",
      dedup=dedup,
      where=locate.concat(wheres, [len(p["prompt_ids"]) for p in parts]),
      id_field=parts[0]["id_field"],
  )
