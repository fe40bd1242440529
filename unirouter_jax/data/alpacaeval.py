"""AlpacaEval preference matrices (tatsu-lab/alpaca_eval, data CC BY-NC 4.0).

Folder layout (files may be gzip-compressed):

* ``prompts.csv``: ``prompt_idx, dataset, instruction`` (805 rows).
* ``aev2_gpt4turbo_vs_gpt4_1106_preference.csv``: ``prompt_idx`` and one
  column per LLM, AlpacaEval 2 preference in ``[1, 2]`` against
  gpt4_1106_preview (58 LLMs).
* ``aev1_gpt4_vs_davinci003_preference.csv``: AlpacaEval 1 preference
  (1, 1.5, 2 against text-davinci-003; 0 = judge failure, read as missing).
* ``output_length_chars.csv``: ``prompt_idx`` and per LLM the answer length
  in characters.

Quality is ``preference - 1`` in ``[0, 1]``. ``NullModel`` and ``gpt4_gamed``
(adversarial entries) are excluded by default.

Cost (``usd_per_query``, one number per LLM): the LLM's mean answer length in
tokens (characters / 4, over all prompts) times its output price in USD per
token. The price is the litellm table's output price when the name (after
:data:`PRICE_ALIASES` and dropping a ``_concise``/``_verbose`` suffix) is
found there; otherwise the parameter-count rule
:func:`prices.usd_per_mtok_from_params` on the size parsed from the name (or
:data:`SIZE_ALIASES`). LLMs with neither are dropped and listed in provenance
(``dropped_no_cost``).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from unirouter_jax.data import dataset as dataset_lib
from unirouter_jax.data import locate, prices

LICENCE = (
    "AlpacaEval (tatsu-lab/alpaca_eval): data CC BY-NC 4.0 "
    "(non-commercial use, attribution required)"
)
EXCLUDED = ("NullModel", "gpt4_gamed")
FILES = {
    2: "aev2_gpt4turbo_vs_gpt4_1106_preference.csv",
    1: "aev1_gpt4_vs_davinci003_preference.csv",
}
# AlpacaEval name -> litellm name, for closed models named differently.
PRICE_ALIASES = {
    "claude": "anthropic.claude-v1",
    "claude-2": "anthropic.claude-v2:1",
    "claude-2.1": "anthropic.claude-v2:1",
    "claude-instant-1.2": "anthropic.claude-instant-v1",
    "gpt-3.5-turbo-0301": "gpt-3.5-turbo",
    "gpt35_turbo_instruct": "gpt-3.5-turbo-instruct",
    "gpt4": "gpt-4",
    "gpt4_0314": "gpt-4",
    "gpt4_0613": "gpt-4-0613",
    "gpt4_1106_preview": "gpt-4-1106-preview",
}
# Sizes (billions) of open models whose name carries none.
SIZE_ALIASES = {
    "alpaca-farm-ppo-human": 7.0,
    "alpaca-farm-ppo-sim-gpt4-20k": 7.0,
    "phi-2": 2.7,
    "phi-2-sft": 2.7,
    "phi-2-dpo": 2.7,
}


def _find(root: pathlib.Path, name: str) -> pathlib.Path:
  for cand in (root / name, root / (name + ".gz")):
    if cand.exists():
      return cand
  raise dataset_lib.DataError("file not found", file=str(root / name))


def _read_csv(path: pathlib.Path) -> pd.DataFrame:
  try:
    df = pd.read_csv(path)
  except pd.errors.EmptyDataError as e:
    raise dataset_lib.DataError("empty file", file=str(path)) from e
  if "prompt_idx" not in df.columns:
    raise dataset_lib.DataError(
        "missing column", file=str(path), column="prompt_idx"
    )
  dup = df["prompt_idx"].duplicated().to_numpy()
  if dup.any():
    i = int(np.argmax(dup))
    raise dataset_lib.DataError(
        f"duplicate prompt_idx {_plain(df['prompt_idx'].iloc[i])}",
        column="prompt_idx",
        **locate.locator(path)(i, "prompt_idx"),
    )
  return df.set_index("prompt_idx")


def _plain(v) -> str:
  return str(v.item() if isinstance(v, np.generic) else v)


def _values(
    df: pd.DataFrame,
    col: str,
    path: pathlib.Path,
    what: str,
    bounds: tuple[float, float],
    allow_zero: bool = False,
) -> np.ndarray:
  """Numeric column ``col`` of ``df``; DataError outside ``bounds``.

  ``allow_zero``: 0 is valid too (AlpacaEval 1 judge failures).
  """
  lo, hi = bounds
  where = locate.locator(path)
  ids = [_plain(x) for x in df.index]
  vals = dataset_lib.numeric_column(df[col], column=col, where=where, ids=ids)
  ok = np.isnan(vals) | ((vals >= lo) & (vals <= hi))
  if allow_zero:
    ok |= vals == 0
  if not ok.all():
    i = int(np.argmax(~ok))
    raise dataset_lib.DataError(
        f"{what} {dataset_lib.plain_number(vals[i])} outside [{lo:g}, {hi:g}]",
        column=col,
        **dataset_lib.location(where, i, col, ids),
    )
  return vals


def output_price(llm: str) -> tuple[float, str] | None:
  """USD per output Mtok of an AlpacaEval LLM and where it came from."""
  base = llm
  for suffix in ("_concise", "_verbose"):
    base = base.removesuffix(suffix)
  hit = prices.lookup_price(base, aliases=PRICE_ALIASES)
  if hit is not None:
    return hit[0][1], f"{prices.LITELLM_VERSION}:{hit[1]}"
  size = SIZE_ALIASES.get(base) or prices.params_billion(base)
  if size is not None:
    return prices.usd_per_mtok_from_params(size), f"params:{size:g}B"
  return None


def load_alpacaeval(
    path: str | pathlib.Path,
    *,
    version: int = 2,
    exclude: tuple[str, ...] = EXCLUDED,
    name: str | None = None,
    provenance: dict | None = None,
    dedup: bool = False,
) -> dataset_lib.Dataset:
  """Loads an AlpacaEval preference matrix as a routing Dataset.

  Args:
    path: folder with the files in the module docstring.
    version: 2 (AlpacaEval 2, default) or 1.
    exclude: LLMs to leave out (default: the adversarial entries).
    name: dataset name; default ``alpacaeval`` / ``alpacaeval_v1``.
    provenance: extra provenance entries.
    dedup: merge prompts with the same text (the bundled copies do).

  Returns:
    Dataset with ``[805, m]`` quality, per-LLM ``usd_per_query`` costs.
  """
  if version not in FILES:
    raise dataset_lib.DataError(f"version must be 1 or 2, got {version!r}")
  root = pathlib.Path(path)
  pref_path = _find(root, FILES[version])
  prompt_path = _find(root, "prompts.csv")
  len_path = _find(root, "output_length_chars.csv")
  pdf = _read_csv(prompt_path)
  for col in ("dataset", "instruction"):
    if col not in pdf.columns:
      raise dataset_lib.DataError(
          "missing column", file=str(prompt_path), column=col
      )
  pref = _read_csv(pref_path)
  lens = _read_csv(len_path)
  unknown = ~pref.index.isin(pdf.index)
  if unknown.any():
    i = int(np.argmax(unknown))
    raise dataset_lib.DataError(
        f"prompt_idx {_plain(pref.index[i])} not in {prompt_path.name}",
        column="prompt_idx",
        **locate.locator(pref_path)(i, "prompt_idx"),
    )
  pref_raw, pref = pref, pref.reindex(pdf.index)
  llms, costs, cost_src, dropped = [], [], {}, []
  for llm in pref.columns:
    if llm in exclude:
      continue
    price = output_price(llm)
    if price is None or llm not in lens.columns:
      dropped.append(llm)
      continue
    _values(pref_raw, llm, pref_path, "preference", (1, 2), version == 1)
    chars = _values(lens, llm, len_path, "length", (0, np.inf))
    mean_tokens = float(pd.Series(chars).mean()) / prices.CHARS_PER_TOKEN
    llms.append(llm)
    costs.append(mean_tokens * price[0] / 1e6)
    cost_src[llm] = price[1]
  raw = pref[llms].to_numpy(np.float64)
  if version == 1:
    raw = np.where(raw == 0, np.nan, raw)  # judge failures
  quality = raw - 1.0
  prov = {
      "format": "alpacaeval",
      "version": version,
      "files": [prompt_path.name, pref_path.name, len_path.name],
      "licence": LICENCE,
      "excluded": [x for x in exclude if x in pref.columns],
      "dropped_no_cost": dropped,
      "price_source": cost_src,
      "price_table_version": prices.LITELLM_VERSION,
      "cost": (
          "USD per query = mean answer length (chars/4 tokens, all prompts) "
          "x output USD/token (litellm table, else 0.056 * B**0.653 USD/Mtok "
          "from the parameter count B)"
      ),
      "quality": (
          "preference - 1" + ("; 0 read as missing" if version == 1 else "")
      ),
      **(provenance or {}),
  }
  return dataset_lib.assemble(
      name=name or ("alpacaeval" if version == 2 else "alpacaeval_v1"),
      source=str(pref_path),
      prompt_ids=pdf.index.astype(str).tolist(),
      prompts=pdf["instruction"].tolist(),
      tasks=pdf["dataset"].astype(str).tolist(),
      llm_names=llms,
      quality_nm=quality,
      cost_nm=np.asarray(costs),
      per_prompt_cost=False,
      cost_unit="usd_per_query",
      provenance=prov,
      dedup=dedup,
      where=locate.locator(prompt_path),
      id_field="prompt_idx",
  )
