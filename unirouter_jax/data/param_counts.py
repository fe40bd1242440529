"""Parameter counts of open LLMs, the cost of an EmbedLLM LLM (in billions).

EmbedLLM carries no prices; the UniRoute paper (arXiv 2502.08773) costs an
EmbedLLM LLM by its number of parameters. The bundled table
``datasets/prices/embedllm_params_billion.csv`` (columns ``model,
params_billion, source, note``) has one row per LLM of the EmbedLLM paper's
model list (arXiv 2410.02223, Appendix A.1, Table 2: 122 names; the
dataset's ``model_order.csv`` holds 112 of them), each with the model card,
paper or leaderboard file the count comes from.

``params_billion`` is the size the model card or paper gives: the size class
of the model, which is what its name says when the name has a size (7 for a
Mistral-7B fine-tune, 70 for a Llama-2-70B one); for a mixture of experts,
the total parameter count (Mixtral-8x7B: 46.7, not 8 x 7 = 56, since the
experts share their attention layers). Rows whose ``note`` starts with
``UNVERIFIED`` are a best estimate that no source on hand confirmed.

Names match through :func:`model_key`, which ignores case, reads the
dataset's ``org__name`` spelling as the hub's ``org/name`` and treats ``-``,
``_`` and ``.`` alike: ``microsoft__phi-1_5``, ``microsoft/phi-1.5`` and
``Microsoft/Phi-1_5`` are one model.
"""

from __future__ import annotations

import functools
import math
import re
import types
from collections.abc import Mapping
from typing import NamedTuple

import pandas as pd

from unirouter_jax.data import dataset as dataset_lib
from unirouter_jax.data import locate

EMBEDLLM_PARAMS_FILE = (
    dataset_lib.DATASETS_DIR / "prices" / "embedllm_params_billion.csv"
)
COLUMNS = ("model", "params_billion", "source")
_SEPARATORS = re.compile(r"[-_.]+")


class ParamCount(NamedTuple):
  """One table row: the model as listed, its size and where it comes from."""

  model: str
  params_billion: float
  source: str


def model_key(name: str) -> str:
  """The name as matched: lower case, ``__`` as ``/``, ``-_.`` as ``-``."""
  s = name.strip().lower().replace("__", "/")
  return _SEPARATORS.sub("-", s)


@functools.lru_cache(maxsize=4)
def param_table(path: str | None = None) -> Mapping[str, ParamCount]:
  """Reads a parameter-count CSV into ``{model_key(model): ParamCount}``.

  The result is cached and read-only.

  Args:
    path: CSV with columns ``model, params_billion, source`` (more are
      ignored); None reads the bundled EmbedLLM table.

  Raises:
    DataError: a missing column, a count that is not a positive number, a
      row without a source, or two rows for one model (after
      :func:`model_key`), naming the file and line.
  """
  path = str(path or EMBEDLLM_PARAMS_FILE)
  try:
    df = pd.read_csv(path, dtype={"model": str, "source": str})
  except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
    raise dataset_lib.DataError(f"cannot read: {e}", file=path) from e
  for col in COLUMNS:
    if col not in df.columns:
      raise dataset_lib.DataError("missing column", file=path, column=col)
  where = locate.locator(path)
  models = df["model"].fillna("").astype(str).str.strip().tolist()
  # No ids: numeric_column would call the model a "prompt id".
  size = dataset_lib.numeric_column(
      df["params_billion"], column="params_billion", where=where
  )
  sources = df["source"].fillna("").astype(str).str.strip().tolist()
  table: dict[str, ParamCount] = {}

  def fail(i: int, column: str, message: str):
    # The file is re-read for the line only when a row is bad.
    at = dict(where(i, column))
    if models[i]:
      at.update(prompt_id=models[i], id_name="model")
    return dataset_lib.DataError(message, column=column, **at)

  for i, (model, b, src) in enumerate(zip(models, size, sources, strict=True)):
    if not model:
      raise fail(i, "model", "missing model name")
    if math.isnan(b):
      raise fail(i, "params_billion", "missing parameter count")
    if not 0 < b < math.inf:
      raise fail(
          i,
          "params_billion",
          f"parameter count {dataset_lib.plain_number(b)} is not > 0 and "
          "finite",
      )
    if not src:
      raise fail(i, "source", "no source for the parameter count")
    key = model_key(model)
    if key in table:
      raise fail(i, "model", f"second row for the model {table[key].model!r}")
    table[key] = ParamCount(model, float(b), src)
  return types.MappingProxyType(table)


def lookup(
    name: str, table: Mapping[str, ParamCount] | None = None
) -> ParamCount | None:
  """The row of ``name`` (see :func:`model_key`), or None."""
  table = param_table() if table is None else table
  return table.get(model_key(name))
