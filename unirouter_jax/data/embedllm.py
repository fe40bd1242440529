"""EmbedLLM long format (HF ``RZ412/EmbedLLM``; 112 LLMs x 36,054 prompts).

Folder layout (files may be gzip-compressed):

* ``train.csv``, ``val.csv``, ``test.csv``: one row per (prompt, LLM) with at
  least ``model_id, prompt_id, label`` (0/1; upstream also has ``prompt``,
  ``category`` and ``model_name``, ignored). Repeated (prompt, LLM) rows are
  reduced by max, as upstream.
* ``question_order.csv``: ``prompt_id, prompt`` (the prompt order and text).
* ``model_order.csv``: ``model_id, model_name`` (upstream spells names
  ``org__name``, e.g. ``microsoft__phi-1_5``).

Cost: EmbedLLM has no prices; as in the UniRoute paper, the cost of an LLM is
its number of parameters in billions. Per LLM, in order: ``cost_table`` (the
user's, by exact name), the bundled table of :mod:`param_counts` (every LLM
of the EmbedLLM paper's model list, with its source; matched ignoring case,
``org__name`` vs ``org/name`` and ``-_.``), and, unless
``parse_names=False``, the size in the name (:func:`prices.params_billion`,
``"meta-llama/Llama-2-13b-chat-hf"`` -> 13). An LLM with none of them is a
DataError naming it, ``model_order.csv`` and its line; ``drop_unpriced=True``
drops such LLMs instead, with a warning, and lists them in provenance
(``dropped_no_cost``). Where each cost came from is in
``provenance["cost_source"]``.
"""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from unirouter_jax.data import byod, locate, param_counts, prices
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


_PARAMS_FILE = (
    "unirouter_jax/datasets/prices/" + param_counts.EMBEDLLM_PARAMS_FILE.name
)


def _llm_costs(
    names: list[str],
    user: Mapping[str, float],
    *,
    parse_names: bool,
    drop_unpriced: bool,
    path: pathlib.Path,
) -> tuple[list[float], dict[str, str], list[str]]:
  """Per LLM of ``model_order.csv``: its cost, where it came from, unpriced.

  Returns ``(costs of the priced LLMs, {llm: "cost_table" | "table" |
  "name"}, [unpriced LLMs])``; raises DataError for the first unpriced LLM
  unless ``drop_unpriced``.
  """
  table = param_counts.param_table()
  costs, source, missing = [], {}, []
  for llm in names:
    if llm in user:
      cost, source[llm] = user[llm], "cost_table"
    elif (row := param_counts.lookup(llm, table)) is not None:
      cost, source[llm] = row.params_billion, "table"
    elif parse_names and (size := prices.params_billion(llm)) is not None:
      cost, source[llm] = size, "name"
    else:
      missing.append(llm)
      continue
    costs.append(cost)
  if missing and not drop_unpriced:
    j = names.index(missing[0])
    also = (
        " (also without one: "
        + ", ".join(repr(x) for x in missing[1:4])
        + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        + ")"
        if len(missing) > 1
        else ""
    )
    raise dataset_lib.DataError(
        "no parameter count for this LLM: not in cost_table or "
        f"{param_counts.EMBEDLLM_PARAMS_FILE.name}"
        + (", no size in its name" if parse_names else "")
        + f"{also}; pass cost_table={{name: billions}} or drop_unpriced=True",
        column="model_name",
        **dataset_lib.location(
            locate.locator(path), j, "model_name", names, "model"
        ),
    )
  if len(missing) == len(names):
    raise dataset_lib.DataError("no LLM has a cost", file=str(path))
  if missing:
    warnings.warn(
        f"EmbedLLM: dropped {len(missing)} LLM{'s' * (len(missing) > 1)} "
        "without a parameter count "
        f"(drop_unpriced=True): {', '.join(repr(x) for x in missing)}",
        UserWarning,
        stacklevel=3,
    )
  return costs, source, missing


def load_embedllm(
    path: str | pathlib.Path,
    *,
    name: str = "embedllm",
    cost_table: str | pathlib.Path | Mapping[str, float] | None = None,
    parse_names: bool = True,
    drop_unpriced: bool = False,
    dedup: bool = False,
) -> dataset_lib.Dataset:
  """Loads an EmbedLLM folder (all splits) into one Dataset.

  Args:
    path: folder with the files in the module docstring.
    name: dataset name.
    cost_table: ``{model_name: cost}`` or CSV ``model, cost`` overriding the
      parameter-count cost.
    parse_names: fall back on the size in the name for an LLM missing from
      both tables (False: the tables only).
    drop_unpriced: drop the LLMs without a cost (warning, listed in
      ``provenance["dropped_no_cost"]``) instead of raising DataError.
    dedup: merge prompts with the same text (default: keep them all).

  Returns:
    Dataset in ``question_order`` order, ``cost_unit="params_billion"``
    (``"user"`` when every cost comes from ``cost_table``).

  Raises:
    DataError: a malformed file, or an LLM without a cost (unless
      ``drop_unpriced``), naming the file and line.
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
  where_q = locate.locator(q_path)
  if ids.has_duplicates:
    i = int(np.argmax(ids.duplicated()))
    raise dataset_lib.DataError(
        f"duplicate prompt id {ids[i]!r}",
        column="prompt_id",
        **where_q(i, "prompt_id"),
    )
  model_ids = pd.Index(mdf["model_id"].astype(str))
  names = mdf["model_name"].astype(str).tolist()
  # Costs before the (large) label files: an unpriced LLM fails at once.
  costs, source, dropped = _llm_costs(
      names,
      byod.read_cost_table(cost_table) or {},
      parse_names=parse_names,
      drop_unpriced=drop_unpriced,
      path=m_path,
  )
  keep = [j for j, llm in enumerate(names) if llm not in dropped]
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
    where = locate.locator(p)
    pid_r = ids.get_indexer(df["prompt_id"].astype(str))
    llm_r = model_ids.get_indexer(df["model_id"].astype(str))
    for col, idx, ref in (
        ("prompt_id", pid_r, q_path.name),
        ("model_id", llm_r, m_path.name),
    ):
      if (idx < 0).any():
        i = int(np.argmax(idx < 0))
        raise dataset_lib.DataError(
            f"{str(df[col].iloc[i])!r} not in {ref}",
            column=col,
            **where(i, col),
        )
    pids = df["prompt_id"].astype(str).tolist()
    label = dataset_lib.numeric_column(
        df["label"], column="label", where=where, ids=pids
    )
    dataset_lib.check_unit_interval(
        label, column="label", where=where, ids=pids
    )
    q_nm = np.fmax(q_nm, byod.pivot_long(pid_r, llm_r, label, n, m))
  if not files:
    raise dataset_lib.DataError("no train/val/test.csv", file=str(root))
  prov = {
      "format": "embedllm",
      "files": files,
      "licence": LICENCE,
      "cost": (
          "parameter count (billions): cost_table, else the bundled table "
          f"{_PARAMS_FILE} (model cards / papers), else the size in the name"
      ),
      "params_table": _PARAMS_FILE,
      "cost_source": source,
      "dropped_no_cost": dropped,
  }
  all_user = all(v == "cost_table" for v in source.values())
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
      cost_unit="user" if all_user else "params_billion",
      provenance=prov,
      dedup=dedup,
      where=where_q,
  )
