"""SPROUT (HF ``CARROT-LLM-Routing/SPROUT``; 13 LLMs, about 44k prompts).

Upstream layout (checked against public code that reads it): splits
``train``, ``validation``, ``test`` stored as
``data/{split}-00000-of-00001.parquet``. Each row has meta columns ``key``,
``dataset``, ``dataset_level``, ``dataset_idx``, ``prompt``,
``golden_answer`` and one column per LLM (e.g. ``openai-gpt-4o``) holding a
record with ``score`` (judge score in ``[0, 1]``), ``num_input_tokens`` and
``num_output_tokens`` (and the response text, ignored). A missing record is a
missing label.

The loader reads ``.parquet`` (needs pyarrow) or the same rows as JSON lines
(``.jsonl[.gz]``, what ``datasets.Dataset.to_json`` writes), from a file or a
folder (``data/`` is searched too; splits are concatenated in file-name
order). Cost of LLM ``m`` on prompt ``n`` in USD::

  (num_input_tokens * usd_in_m + num_output_tokens * usd_out_m) / 1e6

with prices from the SPROUT list (``SPROUT_COSTS`` of CARROT), overridable.
A missing record costs the LLM's mean cost.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from unirouter_jax.data import dataset as dataset_lib
from unirouter_jax.data import locate
from unirouter_jax.data import prices as prices_lib

META = ("key", "dataset", "dataset_level", "dataset_idx", "prompt",
        "golden_answer")  # fmt: skip
RECORD = ("score", "num_input_tokens", "num_output_tokens")
LICENCE = "SPROUT (CARROT-LLM-Routing/SPROUT): no licence file upstream"


def _files(root: pathlib.Path) -> list[pathlib.Path]:
  if root.is_file():
    return [root]
  if not root.is_dir():
    raise dataset_lib.DataError("path not found", file=str(root))
  found = []
  for d in (root, root / "data"):
    if d.is_dir():
      found += [
          p for p in d.iterdir() if p.suffix == ".parquet" or ".jsonl" in p.name
      ]
  order = {"train": 0, "validation": 1, "test": 2}
  found.sort(
      key=lambda p: (order.get(p.name.split("-")[0].split(".")[0], 3), p.name)
  )
  if not found:
    raise dataset_lib.DataError("no .parquet or .jsonl files", file=str(root))
  return found


def _read(path: pathlib.Path) -> pd.DataFrame:
  if path.suffix == ".parquet":
    try:
      return pd.read_parquet(path)
    except ImportError as e:
      raise dataset_lib.DataError(
          "reading parquet needs pyarrow (or convert to .jsonl)", file=str(path)
      ) from e
  if path.stat().st_size == 0:
    raise dataset_lib.DataError("empty file", file=str(path))
  try:
    return pd.read_json(path, lines=True, dtype=False)
  except ValueError as e:
    raise dataset_lib.DataError(f"cannot parse: {e}", file=str(path)) from e


def _record(
    rec: Any, llm: str, at: Callable[[], dict]
) -> tuple[float, float, float] | None:
  """(score, input tokens, output tokens) of one record; None if missing.

  ``at()`` gives the record's location for an error (only then computed).
  """
  if not isinstance(rec, Mapping) or rec.get("score") is None:
    return None
  absent = [k for k in RECORD if k not in rec]
  if absent:
    raise dataset_lib.DataError(
        f"record has no {absent[0]!r}; expected {', '.join(RECORD)}",
        column=llm,
        **at(),
    )
  try:
    return tuple(float(rec[k]) for k in RECORD)
  except (TypeError, ValueError) as e:
    raise dataset_lib.DataError(
        f"record holds a non-number: {e}", column=llm, **at()
    ) from e


def load_sprout(
    path: str | pathlib.Path,
    *,
    name: str = "sprout",
    prices: Mapping[str, tuple[float, float]] | None = None,
    dedup: bool = False,
) -> dataset_lib.Dataset:
  """Loads SPROUT split files into one Dataset.

  Args:
    path: a split file or a folder of them (see module docstring).
    name: dataset name.
    prices: ``{llm: (usd_in, usd_out)}`` per Mtok; default the SPROUT list.
    dedup: merge prompts with the same text (default: keep them all).

  Returns:
    Dataset with per-prompt USD costs and tasks from ``dataset``.
  """
  price = dict(prices or prices_lib.sprout_prices())
  ids, texts, tasks, q_parts, c_parts, llms = [], [], [], [], [], None
  files = _files(pathlib.Path(path))
  wheres = []
  for f in files:
    src = str(f)
    where = locate.locator(f)
    wheres.append(where)
    df = _read(f)
    if df.shape[0] == 0:
      raise dataset_lib.DataError("no rows (empty file)", file=src)
    if "prompt" not in df.columns:
      raise dataset_lib.DataError("missing column", file=src, column="prompt")
    cols = [c for c in df.columns if c not in META]
    if llms is None:
      llms = cols
    elif cols != llms:
      extra = sorted(set(cols) ^ set(llms))
      raise dataset_lib.DataError(
          "LLM columns differ from the first file", file=src, column=extra[0]
      )
    split = f.name.split("-")[0].split(".")[0]
    n = df.shape[0]
    keys = df["key"].astype(str) if "key" in df else None
    ids += (
        keys.tolist()
        if keys is not None
        else [f"{split}.{i}" for i in range(n)]
    )
    texts += df["prompt"].tolist()
    tasks += (
        df["dataset"].astype(str).tolist()
        if "dataset" in df
        else ["sprout"] * n
    )
    ids_f = ids[-n:]
    q = np.full((n, len(llms)), np.nan)
    c = np.full((n, len(llms)), np.nan)
    for j, llm in enumerate(llms):
      if llm not in price:
        raise dataset_lib.DataError(
            "LLM not in the SPROUT price list (pass prices=)",
            file=src,
            column=llm,
        )
      pin, pout = price[llm]
      for i, rec in enumerate(df[llm].tolist()):
        got = _record(
            rec,
            llm,
            functools.partial(dataset_lib.location, where, i, ids=ids_f),
        )
        if got is not None:
          q[i, j] = got[0]
          c[i, j] = (got[1] * pin + got[2] * pout) / 1e6
      dataset_lib.check_unit_interval(
          q[:, j], column=llm, where=where, ids=ids_f, what="score"
      )
      known = ~np.isnan(q[:, j])
      dataset_lib.check_costs(
          np.where(known, c[:, j], 0.0), column=llm, where=where, ids=ids_f
      )
    q_parts.append(q)
    c_parts.append(c)
  q_nm = np.concatenate(q_parts)
  c_nm = np.concatenate(c_parts)
  c_nm = dataset_lib.fill_missing_costs(c_nm)
  return dataset_lib.assemble(
      name=name,
      source=str(path),
      prompt_ids=ids,
      prompts=texts,
      tasks=tasks,
      llm_names=llms,
      quality_nm=q_nm,
      cost_nm=c_nm,
      per_prompt_cost=True,
      cost_unit="usd_per_query",
      provenance={
          "format": "sprout",
          "files": [f.name for f in files],
          "licence": LICENCE,
          "price_table": "CARROT SPROUT_COSTS" if prices is None else "user",
          "cost": (
              "USD = (in_tokens*usd_in + out_tokens*usd_out)/1e6; missing "
              "records cost the LLM mean"
          ),
      },
      dedup=dedup,
      where=locate.concat(wheres, [q.shape[0] for q in q_parts]),
      id_field="key",
  )
