"""Loading by registry name or path, with the format inferred from the path.

Bundled sets (gzip-compressed under ``unirouter_jax/datasets/``):
``routerbench_subset`` (RouterBench 0-shot: ARC-Challenge, MBPP, Winogrande),
``llmrouter_dc``, ``alpacaeval`` (AlpacaEval 2) and ``alpacaeval_v1``.

Duplicate prompt texts: a bundled set merges them into the first copy (as
its published numbers were computed: ``routerbench_subset`` has 3,176 prompts
from 3,178 rows); a file or folder given by path keeps every row unless
``dedup=True``. Either way ``ds.provenance["dedup"]`` records the counts.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pandas as pd

from unirouter_jax.data import (
    alpacaeval,
    byod,
    embedllm,
    llmrouter,
    routerbench,
    sprout,
)
from unirouter_jax.data import dataset as dataset_lib

_DIR = dataset_lib.DATASETS_DIR
_BUNDLE_NOTE = {
    "bundled": True,
    "bundle_readme": "unirouter_jax/datasets/README.md",
}
_LOADERS = {
    "routerbench_subset": lambda **kw: routerbench.load_routerbench(
        _DIR / "routerbench_subset",
        name="routerbench_subset",
        provenance={
            **_BUNDLE_NOTE,
            "origin": (
                "RouterBench 0-shot subset via shuhao02/RouterDC "
                "datasets/routerbench_zs"
            ),
        },
        **kw,
    ),
    "llmrouter_dc": lambda **kw: llmrouter.load_llmrouter_dc(
        _DIR / "llmrouter_dc", provenance=dict(_BUNDLE_NOTE), **kw
    ),
    "alpacaeval": lambda **kw: alpacaeval.load_alpacaeval(
        _DIR / "alpacaeval", version=2, provenance=dict(_BUNDLE_NOTE), **kw
    ),
    "alpacaeval_v1": lambda **kw: alpacaeval.load_alpacaeval(
        _DIR / "alpacaeval", version=1, provenance=dict(_BUNDLE_NOTE), **kw
    ),
}
BUNDLED = tuple(_LOADERS)
FORMATS = {
    "routerbench": routerbench.load_routerbench,
    "embedllm": embedllm.load_embedllm,
    "sprout": sprout.load_sprout,
    "llmrouter_dc": llmrouter.load_llmrouter_dc,
    "alpacaeval": alpacaeval.load_alpacaeval,
    "wide": byod.load_wide_csv,
    "long": byod.load_long,
}


def infer_format(path: pathlib.Path) -> str | None:
  """Guesses the format of ``path`` (see :func:`load`), or None."""
  name = path.name
  if path.is_dir():
    if (path / "question_order.csv").exists() or (
        path / "question_order.csv.gz"
    ).exists():
      return "embedllm"
    if any((path / f"train.json{z}").exists() for z in ("", ".gz")):
      return "llmrouter_dc"
    if any(p.name.startswith("prompts.csv") for p in path.iterdir()):
      return "alpacaeval"
    if (path / "data").is_dir():
      return "sprout"
    return None
  if path.suffix == ".pkl":
    return "routerbench"
  if path.suffix == ".parquet":
    return "sprout"
  if ".csv" in name or ".jsonl" in name:
    try:
      if ".csv" in name:
        cols = pd.read_csv(path, nrows=0).columns
      else:
        cols = pd.read_json(path, lines=True, nrows=1, dtype=False).columns
    except (pd.errors.EmptyDataError, ValueError) as e:
      raise dataset_lib.DataError(
          "empty or unreadable file", file=str(path)
      ) from e
    if "model" in cols:
      return "long"
    if "prompt" in cols and ".csv" in name:
      return "wide"
  return None


def load(
    name_or_path: str | pathlib.Path,
    format: str | None = None,  # pylint: disable=redefined-builtin
    dedup: bool | None = None,
    **kw: Any,
) -> dataset_lib.Dataset:
  """Loads a bundled set by name, or a file/folder by path.

  Args:
    name_or_path: one of :data:`BUNDLED`, or a path. Inferred formats:
      ``.pkl`` -> routerbench; a folder with ``question_order.csv`` ->
      embedllm; a folder with ``train.json[.gz]`` -> llmrouter_dc; a folder
      with ``prompts.csv`` -> alpacaeval; a folder with ``data/`` or a
      ``.parquet`` -> sprout; a
      ``.csv``/``.jsonl`` with a ``model`` column -> long; a ``.csv`` with a
      ``prompt`` column and no ``model`` column -> wide.
    format: force a format, one of :data:`FORMATS`.
    dedup: merge prompts with identical text into the first copy (True) or
      keep every row (False). None: True for a bundled set (its published
      numbers), False for a file or folder given by path.
    **kw: passed to the loader.

  Returns:
    The Dataset.
  """
  key = str(name_or_path)
  if format is None and key in _LOADERS:
    return _LOADERS[key](dedup=True if dedup is None else bool(dedup), **kw)
  path = pathlib.Path(key)
  if format is not None and format not in FORMATS:
    raise dataset_lib.DataError(
        f"unknown format {format!r}; expected one of {sorted(FORMATS)}"
    )
  if not path.exists():
    raise dataset_lib.DataError(
        f"no bundled dataset or file named {key!r}; bundled: "
        f"{', '.join(BUNDLED)}"
    )
  fmt = format or infer_format(path)
  if fmt is None:
    raise dataset_lib.DataError(
        f"cannot infer the format; pass format= one of {sorted(FORMATS)}",
        file=key,
    )
  return FORMATS[fmt](path, dedup=bool(dedup), **kw)
