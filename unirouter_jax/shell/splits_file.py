"""The ``splits.json`` format: a run's trials, readable by anyone.

A list of trials, each ``{"test_llms": [names], "train": [prompt ids],
"val": [prompt ids], "test": [prompt ids]}`` (prompt ids from the data's
``prompt_id`` / ``sample_id`` column, else the 0-based row). Every run of
``workdir.run`` writes one; ``unirouter evaluate --splits FILE`` evaluates on
one, so two implementations (or two papers) compare trial by trial.
"""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from unirouter_jax.core.structs import Split
from unirouter_jax.evaluation import protocol


def count(path) -> int:
  """The number of trials in a ``splits.json`` (ValueError if unreadable)."""
  try:
    with open(path) as f:
      return len(json.load(f))
  except (OSError, ValueError, TypeError) as e:
    raise ValueError(f'--splits {path}: cannot read it ({e})') from None


def to_json(splits: Split, ds) -> list[dict[str, list]]:
  """The trials as ``splits.json`` records (names and prompt ids).

  Each record is ``{"test_llms": [names], "train": [ids], "val": [ids],
  "test": [ids]}``; prompt ids are the data's ``prompt_id`` / ``sample_id``
  column, else the 0-based row. Another implementation reading this file
  evaluates on the very same splits, trial by trial.
  """
  names = np.asarray(ds.llm_names)
  ids = np.asarray(ds.prompt_ids).astype(str)
  out = []
  for i in range(splits.train_idx.shape[0]):
    out.append({
        'test_llms': names[np.asarray(splits.test_llm_m[i])].tolist(),
        'train': ids[np.asarray(splits.train_idx[i])].tolist(),
        'val': ids[np.asarray(splits.val_idx[i])].tolist(),
        'test': ids[np.asarray(splits.test_idx[i])].tolist(),
    })
  return out


def read(path, ds, key) -> Split:
  """``splits.json`` as a stacked :class:`Split` (trial keys from ``key``).

  Raises:
    ValueError: naming the file, the trial and the field, on an unknown
      LLM or prompt id, a duplicate, overlapping sets, or trials of unequal
      sizes (the protocol needs one compiled shape).
  """
  try:
    records = json.loads(pathlib.Path(path).read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(
        f'--splits {path}: not a readable JSON file ({e}).'
    ) from None
  if not isinstance(records, list) or not records:
    raise ValueError(f'--splits {path}: expected a non-empty list of trials.')
  llm = {name: j for j, name in enumerate(ds.llm_names)}
  row = {str(x): i for i, x in enumerate(np.asarray(ds.prompt_ids))}
  m = len(llm)
  cols = {f: [] for f in ('train', 'val', 'test')}
  test_m = []
  for t, rec in enumerate(records):
    where = f'--splits {path}: trial {t}'
    if not isinstance(rec, dict) or set(rec) < {'test_llms', *cols}:
      raise ValueError(
          f'{where}: expected keys test_llms, train, val, test; got '
          f'{sorted(rec) if isinstance(rec, dict) else type(rec).__name__}.'
      )
    unknown = [x for x in rec['test_llms'] if x not in llm]
    if unknown:
      raise ValueError(f'{where}: test_llms: unknown LLM {unknown[0]!r}.')
    mask = np.zeros((m,), bool)
    mask[[llm[x] for x in rec['test_llms']]] = True
    if not 1 <= mask.sum() < m:
      raise ValueError(
          f'{where}: test_llms: expected 1..{m - 1} LLMs, got {mask.sum()}.'
      )
    test_m.append(mask)
    seen = set()
    for f in cols:
      bad = [x for x in rec[f] if str(x) not in row]
      if bad:
        raise ValueError(f'{where}: {f}: unknown prompt id {bad[0]!r}.')
      idx = [row[str(x)] for x in rec[f]]
      if seen & set(idx) or len(set(idx)) != len(idx):
        raise ValueError(f'{where}: {f}: a prompt appears twice.')
      seen |= set(idx)
      if t and len(idx) != len(cols[f][0]):
        raise ValueError(
            f'{where}: {f}: {len(idx)} prompts, but trial 0 has '
            f'{len(cols[f][0])} (every trial needs the same sizes).'
        )
      if not idx:
        raise ValueError(f'{where}: {f}: expected at least one prompt.')
      cols[f].append(idx)
  test_sm = np.stack(test_m)
  if len({int(x) for x in test_sm.sum(1)}) != 1:
    raise ValueError(
        f'--splits {path}: every trial needs the same number of test LLMs.'
    )
  return Split(
      train_idx=jax.numpy.asarray(cols['train'], np.int32),
      val_idx=jax.numpy.asarray(cols['val'], np.int32),
      test_idx=jax.numpy.asarray(cols['test'], np.int32),
      train_llm_m=jax.numpy.asarray(~test_sm),
      test_llm_m=jax.numpy.asarray(test_sm),
      key=protocol.trial_keys(key, np.arange(len(records))),
  )
