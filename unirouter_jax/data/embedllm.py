"""EmbedLLM long format (HF ``RZ412/EmbedLLM``; 112 LLMs x 36,054 prompts).

Folder layout (files may be gzip-compressed):

* ``train.csv``, ``val.csv``, ``test.csv``: one row per (prompt, LLM) with at
  least ``model_id, prompt_id, label`` (0/1; upstream also has ``prompt`` and
  ``category``). Repeated (prompt, LLM) rows are reduced by max, as upstream.
* ``question_order.csv``: ``prompt_id, prompt`` (the prompt order and text).
* ``model_order.csv``: ``model_id, model_name``.

Cost: EmbedLLM has no prices; the cost of an LLM is its parameter count in
billions parsed from its name (:func:`prices.params_billion`, e.g.
``"meta-llama/Llama-2-13b-chat-hf"`` -> 13), overridable per LLM by
``cost_table``. LLMs with neither are dropped and listed in provenance
(``dropped_no_cost``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from unirouter_jax.data import byod, prices
from unirouter_jax.data import dataset as dataset_lib

SPLITS = ("train", "val", "test")
LICENCE = "EmbedLLM (RZ412/EmbedLLM); see the upstream dataset card"


def _find(root: pathlib.Path, stem: str) -> pathlib.Path | None:
  for cand in (root / stem, root / (stem + ".gz")):
    if cand.exists():
      return cand
  return None


def _need(df: pd.DataFrame, cols, path: pathlib.Path) -> None:
  for col in cols:
    if col not in df.columns:
      raise dataset_lib.DataError("missing column", file=str(path), column=col)


def load_embedllm(
    path: str | pathlib.Path,
    *,
    name: str = "embedllm",
    cost_table: str | pathlib.Path | Mapping[str, float] | None = None,
) -> dataset_lib.Dataset:
  """Loads an EmbedLLM folder (all splits) into one Dataset.

  Args:
    path: folder with the files in the module docstring.
    name: dataset name.
    cost_table: ``{model_name: cost}`` or CSV ``model, cost`` overriding the
      parameter-count cost.

  Returns:
    Dataset in ``question_order`` order, ``cost_unit="params_billion"``
    (unless every cost comes from the table, then ``"user"``).
  """
  root = pathlib.Path(path)
  q_path = _find(root, "question_order.csv")
  m_path = _find(root, "model_order.csv")
  if q_path is None or m_path is None:
    missing = "question_order.csv" if q_path is None else "model_order.csv"
    raise dataset_lib.DataError("file not found", file=str(root / missing))
  qdf = byod.read_table(q_path)
  _need(qdf, ("prompt_id", "prompt"), q_path)
  mdf = byod.read_table(m_path)
  _need(mdf, ("model_id", "model_name"), m_path)
  ids = pd.Index(qdf["prompt_id"].astype(str))
  if ids.has_duplicates:
    i = int(np.argmax(ids.duplicated()))
    raise dataset_lib.DataError(
        f"duplicate prompt id {ids[i]!r}",
        file=str(q_path),
        column="prompt_id",
        row=i,
    )
  model_ids = pd.Index(mdf["model_id"].astype(str))
  names = mdf["model_name"].astype(str).tolist()
  n, m = len(ids), len(model_ids)
  q_nm = np.full((n, m), np.nan)
  files = []
  for split in SPLITS:
    p = _find(root, f"{split}.csv")
    if p is None:
      continue
    files.append(p.name)
    df = byod.read_table(p)
    _need(df, ("model_id", "prompt_id", "label"), p)
    pid_r = ids.get_indexer(df["prompt_id"].astype(str))
    llm_r = model_ids.get_indexer(df["model_id"].astype(str))
    for col, idx, ref in (
        ("prompt_id", pid_r, q_path.name),
        ("model_id", llm_r, m_path.name),
    ):
      if (idx < 0).any():
        i = int(np.argmax(idx < 0))
        raise dataset_lib.DataError(
            f"{df[col].iloc[i]!r} not in {ref}", file=str(p), column=col, row=i
        )
    label = pd.to_numeric(df["label"], errors="coerce").to_numpy(np.float64)
    dataset_lib.check_unit_interval(
        label, file=str(p), column="label", ids=[str(i) for i in range(len(df))]
    )
    q_nm = np.fmax(q_nm, byod.pivot_long(pid_r, llm_r, label, n, m))
  if not files:
    raise dataset_lib.DataError("no train/val/test.csv", file=str(root))
  table = byod.read_cost_table(cost_table) or {}
  keep, costs, source, dropped = [], [], {}, []
  for j, llm in enumerate(names):
    size = table.get(llm, prices.params_billion(llm))
    if size is None:
      dropped.append(llm)
      continue
    keep.append(j)
    costs.append(size)
    source[llm] = "table" if llm in table else "name"
  prov = {
      "format": "embedllm",
      "files": files,
      "licence": LICENCE,
      "cost": (
          "parameter count (billions) parsed from the model name, "
          "overridden by cost_table"
      ),
      "cost_source": source,
      "dropped_no_cost": dropped,
  }
  all_table = bool(keep) and all(v == "table" for v in source.values())
  return dataset_lib.assemble(
      name=name,
      source=str(root),
      prompt_ids=ids.tolist(),
      prompts=qdf["prompt"].tolist(),
      tasks=None,
      llm_names=[names[j] for j in keep],
      quality_nm=q_nm[:, keep],
      cost_nm=np.asarray(costs, dtype=np.float64),
      per_prompt_cost=False,
      cost_unit="user" if all_table else "params_billion",
      provenance=prov,
  )
