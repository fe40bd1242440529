"""LLMRouter DC data (ulab-uiuc/LLMRouter ``data/dcrouter_preprocessed``).

Files in the folder (each may be gzip-compressed, ``.gz``):

* ``train.json``, ``test.json``: lists of ``{"question": str, "scores":
  {llm: float}}``. 119 test questions also appear in train; the loader keeps
  the first (train) copy and records the overlap and how many of those
  disagree in their scores.
* ``default_query_{train,test}.jsonl``: ``{"task_name", "query", ...}``;
  joined on the exact text to recover each question's task (a text listed
  under several tasks takes the first one, in file order; counted in
  provenance).
* ``default_llm.json``: per LLM ``input_price``/``output_price`` in USD per
  million tokens (and ``size``).

Cost: the data carries no token counts, so the cost of LLM ``m`` on prompt
``n`` is estimated as ``(ceil(len(question) / 4) * input_price_m +
output_tokens * output_price_m) / 1e6`` USD with ``output_tokens = 256`` by
default (documented in provenance).
"""

from __future__ import annotations

import functools
import gzip
import json
import pathlib
from typing import Any

import numpy as np

from unirouter_jax.data import dataset as dataset_lib
from unirouter_jax.data import locate, prices

LICENCE = "LLMRouter (ulab-uiuc/LLMRouter): MIT"


def _open(root: pathlib.Path, stem: str):
  for cand in (root / stem, root / (stem + ".gz")):
    if cand.exists():
      opener = gzip.open if cand.suffix == ".gz" else open
      return cand, opener(cand, "rt", encoding="utf-8")
  raise dataset_lib.DataError("file not found", file=str(root / stem))


def _read_json(root: pathlib.Path, stem: str) -> tuple[str, Any]:
  path, f = _open(root, stem)
  with f:
    try:
      return str(path), json.load(f)
    except json.JSONDecodeError as e:
      raise dataset_lib.DataError(f"bad JSON: {e}", file=str(path)) from e


def _task_index(root: pathlib.Path) -> tuple[dict[str, str], int]:
  """``{query text: task_name}`` from the jsonl files, and #ambiguous texts."""
  tasks: dict[str, str] = {}
  ambiguous: set[str] = set()
  for split in ("train", "test"):
    path, f = _open(root, f"default_query_{split}.jsonl")
    with f:
      for i, line in enumerate(f):
        if not line.strip():
          continue
        try:
          rec = json.loads(line)
        except json.JSONDecodeError as e:
          raise dataset_lib.DataError(
              f"bad JSON: {e.msg}", file=str(path), line=i + 1
          ) from e
        if "query" not in rec or "task_name" not in rec:
          col = "query" if "query" not in rec else "task_name"
          raise dataset_lib.DataError(
              "missing field", file=str(path), column=col, line=i + 1
          )
        q, t = rec["query"], rec["task_name"]
        if tasks.setdefault(q, t) != t:
          ambiguous.add(q)
  return tasks, len(ambiguous)


def _check_scores(scores: Any, at) -> None:
  """DataError unless ``scores`` maps LLMs to None or a number in [0, 1].

  ``at(keys)`` locates the JSON key path ``keys`` (only called on error).
  """
  if not isinstance(scores, dict):
    raise dataset_lib.DataError(
        f"expected an object {{llm: score}}, got {type(scores).__name__}",
        column="scores",
        **at(("scores",)),
    )
  for k, v in scores.items():
    if v is None:
      continue
    if isinstance(v, bool) or not isinstance(v, (int, float)):
      raise dataset_lib.DataError(
          f"score is not a number: {v!r}", column=k, **at(("scores", k))
      )
    if v == v and not 0 <= v <= 1:  # NaN (v != v) is a missing label
      raise dataset_lib.DataError(
          f"score {dataset_lib.plain_number(v)} outside [0, 1]",
          column=k,
          **at(("scores", k)),
      )


def _check_prices(path: str, info: dict[str, Any]) -> None:
  """DataError unless each LLM has finite, non-negative USD prices."""
  for llm, rec in info.items():
    for key in ("input_price", "output_price"):
      v = rec.get(key) if isinstance(rec, dict) else None
      try:
        x = float(v)
      except (TypeError, ValueError):
        raise dataset_lib.DataError(
            f"{key} {v!r} is not a number", file=path, column=llm
        ) from None
      if not (np.isfinite(x) and x >= 0):
        raise dataset_lib.DataError(
            f"{key} {dataset_lib.plain_number(x)} must be finite and >= 0",
            file=path,
            column=llm,
        )


def load_llmrouter_dc(
    path: str | pathlib.Path,
    *,
    name: str = "llmrouter_dc",
    output_tokens: float = 256.0,
    provenance: dict | None = None,
    dedup: bool = False,
) -> dataset_lib.Dataset:
  """Loads the LLMRouter DC folder into one Dataset (train + test, deduped).

  Args:
    path: folder with the files listed in the module docstring.
    name: dataset name.
    output_tokens: assumed output tokens per query for the cost estimate.
    provenance: extra provenance entries.
    dedup: passed to :func:`dataset.assemble`; the train/test overlap is
      merged either way (the format repeats those questions by design).

  Returns:
    Dataset, ``cost_unit="usd_per_query"``, ``per_prompt_cost=True`` (the
    estimate grows with the question length), tasks from the query files.
  """
  root = pathlib.Path(path)
  if not root.is_dir():
    raise dataset_lib.DataError("folder not found", file=str(root))
  llm_file, llm_info = _read_json(root, "default_llm.json")
  rows, split_of, overlap, conflicts = {}, {}, 0, 0
  record_of, paths = {}, {}  # question -> index in its split's file
  for split in ("train", "test"):
    src, recs = _read_json(root, f"{split}.json")
    paths[split] = src
    where = locate.locator(src)
    if not isinstance(recs, list) or not recs:
      raise dataset_lib.DataError("expected a non-empty list", file=src)
    for i, r in enumerate(recs):
      for key in ("question", "scores"):
        if not isinstance(r, dict) or key not in r:
          raise dataset_lib.DataError("missing field", column=key, **where(i))
      _check_scores(r["scores"], functools.partial(where, i))
      q = r["question"]
      if q in rows:
        overlap += 1
        conflicts += rows[q] != r["scores"]
        continue
      rows[q] = r["scores"]
      split_of[q] = split
      record_of[q] = i
  questions = list(rows)
  llms = sorted({k for s in rows.values() for k in s})
  unpriced = [x for x in llms if x not in llm_info]
  if unpriced:
    raise dataset_lib.DataError(
        "LLM has scores but no price", file=llm_file, column=unpriced[0]
    )
  _check_prices(llm_file, {x: llm_info[x] for x in llms})
  quality = np.full((len(questions), len(llms)), np.nan)
  # Train questions come first: prompt i is record index_n[i] of its file.
  index_n = np.array([record_of[q] for q in questions], dtype=np.int64)
  n_train = sum(split_of[q] == "train" for q in questions)
  where_n = locate.concat(
      [
          locate.locator(paths["train"], index_n[:n_train]),
          locate.locator(paths["test"], index_n[n_train:]),
      ],
      [n_train, len(questions) - n_train],
  )
  col = {x: j for j, x in enumerate(llms)}
  for i, q in enumerate(questions):
    for k, v in rows[q].items():
      quality[i, col[k]] = np.nan if v is None else float(v)
  task_of, ambiguous = _task_index(root)
  no_task = [q for q in questions if q not in task_of]
  tasks = [task_of.get(q, "unknown") for q in questions]
  pin = np.array([float(llm_info[x]["input_price"]) for x in llms])
  pout = np.array([float(llm_info[x]["output_price"]) for x in llms])
  tin = prices.estimate_tokens(questions)
  cost = (tin[:, None] * pin[None] + output_tokens * pout[None]) / 1e6
  # Stable ids: split and position of the first copy.
  counters = {"train": 0, "test": 0}
  ids = []
  for q in questions:
    s = split_of[q]
    ids.append(f"{s}.{counters[s]}")
    counters[s] += 1
  prov = {
      "format": "llmrouter_dc",
      "licence": LICENCE,
      "train_test_overlap": overlap,
      "overlap_with_different_scores": int(conflicts),
      "overlap_policy": "kept the train copy",
      "tasks_ambiguous": ambiguous,
      "tasks_unknown": len(no_task),
      "cost": (
          "USD per query = (ceil(len(question)/4) * input_price + "
          f"{output_tokens:g} * output_price) / 1e6; prices from "
          "default_llm.json; token counts estimated (not in the data)"
      ),
      "unlabelled_llms_in_price_file": sorted(set(llm_info) - set(llms)),
      **(provenance or {}),
  }
  return dataset_lib.assemble(
      name=name,
      source=str(root),
      prompt_ids=ids,
      prompts=questions,
      tasks=tasks,
      llm_names=llms,
      quality_nm=quality,
      cost_nm=cost,
      per_prompt_cost=True,
      cost_unit="usd_per_query",
      provenance=prov,
      dedup=dedup,
      where=where_n,
      id_field="question",
  )
