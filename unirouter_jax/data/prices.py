"""Price tables: attach a USD cost per query to LLMs by name.

The bundled table ``datasets/prices/litellm_prices_usd_per_mtok.csv.gz`` is
derived from litellm 1.110.2's ``model_prices_and_context_window.json`` (MIT)
and lists USD per million input/output tokens. Only text modes (chat,
completion, responses) are used. A name is matched, in order, via the user's
``aliases``, exactly, with ``_`` read as ``-``, and finally by its last path
component (``provider/model`` -> ``model``, provider-native rows first).

Cost of LLM ``m`` on prompt ``n`` (USD)::

  (in_tokens_n * usd_in_m + out_tokens_nm * usd_out_m) / 1e6

where ``in_tokens_n`` defaults to ``ceil(len(prompt) / 4)`` (about four
characters per token for English) and ``out_tokens`` to a fixed budget.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from unirouter_jax.data import dataset as dataset_lib
from unirouter_jax.data import locate

LITELLM_VERSION = "litellm 1.110.2"
LITELLM_FILE = (
    dataset_lib.DATASETS_DIR / "prices" / "litellm_prices_usd_per_mtok.csv.gz"
)
SPROUT_PRICE_FILE = (
    dataset_lib.DATASETS_DIR / "prices" / "carrot_prices_usd_per_mtok.json.gz"
)
CHARS_PER_TOKEN = 4.0
_TEXT_MODES = ("chat", "completion", "responses")


@functools.lru_cache(maxsize=4)
def price_table(path: str | None = None) -> dict[str, tuple[float, float]]:
  """Reads a price CSV into ``{lower-case name: (usd_in, usd_out)}`` per Mtok.

  Args:
    path: CSV with columns ``model, mode, usd_per_mtok_input,
      usd_per_mtok_output``; None reads the bundled litellm table.
  """
  path = str(path or LITELLM_FILE)
  df = pd.read_csv(path)
  need = ["model", "mode", "usd_per_mtok_input", "usd_per_mtok_output"]
  for col in need:
    if col not in df.columns:
      raise dataset_lib.DataError("missing column", file=path, column=col)
  where = locate.locator(path)
  models = df["model"].astype(str).tolist()
  usd = {}
  for col in need[2:]:
    usd[col] = dataset_lib.numeric_column(df[col], column=col, where=where)
    dataset_lib.check_costs(
        np.nan_to_num(usd[col], nan=0.0),  # a missing price: LLM unpriced
        column=col,
        where=where,
        ids=models,
        id_name="model",
    )
  rows = (
      df["mode"].isin(_TEXT_MODES).to_numpy()
      & ~np.isnan(usd[need[2]])
      & ~np.isnan(usd[need[3]])
  )
  names = df["model"][rows].str.lower().tolist()
  pin = usd[need[2]][rows]
  pout = usd[need[3]][rows]
  table: dict[str, tuple[float, float]] = {}
  for name, a, b in zip(names, pin, pout, strict=True):
    table.setdefault(name, (float(a), float(b)))
  # Bare names (after the last "/") as a fallback, native rows first.
  for name, a, b in zip(names, pin, pout, strict=True):
    table.setdefault("~" + name.rsplit("/", 1)[-1], (float(a), float(b)))
  return table


def lookup_price(
    llm: str,
    table: Mapping[str, tuple[float, float]] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> tuple[tuple[float, float], str] | None:
  """Returns ``((usd_in, usd_out) per Mtok, matched key)`` or None."""
  table = price_table() if table is None else table
  name = (aliases or {}).get(llm, llm).lower().strip()
  for key in (name, name.replace("_", "-")):
    if key in table:
      return table[key], key
  for key in (name, name.replace("_", "-")):
    bare = "~" + key.rsplit("/", 1)[-1]
    if bare in table:
      return table[bare], bare[1:]
  return None


def sprout_prices() -> dict[str, tuple[float, float]]:
  """SPROUT price list (CARROT), ``{llm: (usd_in, usd_out)}`` per Mtok."""
  with gzip.open(SPROUT_PRICE_FILE, "rt") as f:
    raw = json.load(f)["SPROUT_COSTS"]
  return {k: (float(v[0]), float(v[1])) for k, v in raw.items()}


def estimate_tokens(texts: np.ndarray) -> np.ndarray:
  """``[n]`` float token estimate ``ceil(len(text) / 4)`` per text."""
  return np.array(
      [math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts], dtype=np.float64
  )


def attach_costs_from_price_table(
    ds: dataset_lib.Dataset,
    *,
    output_tokens: float | np.ndarray = 256.0,
    input_tokens_n: np.ndarray | None = None,
    aliases: Mapping[str, str] | None = None,
    table_path: str | None = None,
    on_missing: str = "error",
) -> dataset_lib.Dataset:
  """Replaces ``ds.cost_nm`` by USD per query from a price table.

  Args:
    ds: the dataset.
    output_tokens: scalar, ``[m]`` or ``[n, m]`` output tokens per query.
    input_tokens_n: ``[n]`` input tokens; None estimates ``len(prompt) / 4``.
    aliases: ``{llm name: price-table name}`` for names that do not match.
    table_path: another price CSV (same columns); None = bundled litellm.
    on_missing: ``"error"`` raises DataError naming the LLM; ``"drop"``
      drops unpriced LLMs and lists them in provenance.

  Returns:
    A new Dataset with ``cost_unit="usd_per_query"``.
  """
  table = price_table(table_path)
  source = str(table_path or LITELLM_FILE)
  keep, prices, matched, missing = [], [], {}, []
  for j, llm in enumerate(ds.llm_names):
    hit = lookup_price(llm, table, aliases)
    if hit is None:
      if on_missing != "drop":
        raise dataset_lib.DataError(
            "LLM not found in the price table (pass aliases= or "
            "on_missing='drop')",
            file=source,
            column=llm,
        )
      missing.append(llm)
      continue
    keep.append(j)
    prices.append(hit[0])
    matched[llm] = hit[1]
  if not keep:
    raise dataset_lib.DataError("no LLM has a price", file=source)
  p = np.asarray(prices, dtype=np.float64)  # [m', 2]
  tin = (
      estimate_tokens(ds.prompts)
      if input_tokens_n is None
      else np.asarray(input_tokens_n, np.float64)
  )
  tout = np.asarray(output_tokens, np.float64)
  if tout.ndim == 1:
    tout = tout[keep]
  elif tout.ndim == 2:
    tout = tout[:, keep]
  cost = (tin[:, None] * p[None, :, 0] + tout * p[None, :, 1]) / 1e6
  sub = ds.subset(llm_idx=np.asarray(keep)) if missing else ds
  prov = dict(ds.provenance)
  prov["price_table"] = {
      "version": LITELLM_VERSION if table_path is None else source,
      "file": source,
      "matched": matched,
      "dropped_unpriced_llms": missing,
      "input_tokens": "given" if input_tokens_n is not None else "chars/4",
      "output_tokens": "given" if tout.ndim else float(tout),
  }
  out = dataclasses.replace(
      sub,
      cost_nm=np.broadcast_to(cost, sub.quality_nm.shape).astype(np.float32),
      per_prompt_cost=True,
      cost_unit="usd_per_query",
      provenance=prov,
  )
  return out.validate()


# Parameter-count price rule, fitted to open-weight list prices of 7B -> $0.2
# and 70B -> $0.9 per Mtok (LLMRouter / NVIDIA NIM, together.ai).
PARAMS_PRICE_A = 0.056
PARAMS_PRICE_B = 0.653
_MOE = re.compile(r"(?<![\d.])(\d+)x(\d+(?:\.\d+)?)b(?![a-z0-9])")
_DENSE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)b(?![a-z0-9])")
_MILLIONS = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)m(?![a-z0-9])")


def params_billion(llm: str) -> float | None:
  """Parameter count in billions parsed from a model name, or None.

  ``"llama-2-70b-chat"`` -> 70, ``"Mixtral-8x7B"`` -> 56 (experts x size),
  ``"Qwen1.5-1.8B-Chat"`` -> 1.8, ``"pythia-410m"`` -> 0.41. The first size
  in the name wins (``"aligner-2b_claude-3-opus"`` -> 2).
  """
  s = llm.lower()
  moe = _MOE.search(s)
  dense = _DENSE.search(s)
  if moe and (dense is None or moe.start() <= dense.start()):
    return float(moe.group(1)) * float(moe.group(2))
  if dense:
    return float(dense.group(1))
  mil = _MILLIONS.search(s)
  return float(mil.group(1)) / 1000 if mil else None


def usd_per_mtok_from_params(params_b: float) -> float:
  """Blended USD per Mtok for an open model: ``0.056 * B ** 0.653``."""
  return PARAMS_PRICE_A * params_b**PARAMS_PRICE_B
