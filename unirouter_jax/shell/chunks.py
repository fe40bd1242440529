"""Per-chunk storage of protocol results: ``.npz`` chunks and JSONL records.

A chunk holds the flattened :class:`~unirouter_jax.core.structs.TrialResult` of
a block of trials (one array per leaf path, e.g. ``methods/knn/metrics/area``)
and is written atomically, so a run killed mid-write leaves no partial chunk.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from unirouter_jax.core.structs import CurveMetrics, MethodResult, TrialResult
from unirouter_jax.deploy import checkpointing


def atomic_write(
    path: str | os.PathLike, write: Callable[[Any], None], mode: str = 'w'
) -> None:
  """Calls ``write(f)`` on a temp file beside ``path``, then renames it
  (permissions as a plain ``open()`` would give, e.g. 0644)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.' + path.name)
  try:
    with os.fdopen(fd, mode) as f:
      write(f)
    os.chmod(tmp, checkpointing.umask_mode(0o666))
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path, obj) -> None:
  atomic_write(path, lambda f: json.dump(obj, f, indent=1, allow_nan=False))


def flatten(result: TrialResult) -> dict[str, np.ndarray]:
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(result)[0]:
    key = '/'.join(
        str(getattr(p, 'name', getattr(p, 'key', getattr(p, 'idx', p))))
        for p in path
    )
    out[key] = np.asarray(leaf)
  return out


def _curve(flat, prefix) -> CurveMetrics:
  return CurveMetrics(**{
      f.name: flat[f'{prefix}/{f.name}']
      for f in dataclasses.fields(CurveMetrics)
  })


def unflatten(flat: Mapping[str, np.ndarray]) -> TrialResult:
  names = sorted({k.split('/')[1] for k in flat if k.startswith('methods/')})
  methods = {}
  for name in names:
    p = f'methods/{name}'
    methods[name] = MethodResult(
        metrics=_curve(flat, f'{p}/metrics'),
        selected=flat[f'{p}/selected'],
        test_area_g=flat[f'{p}/test_area_g'],
        val_area_g=flat[f'{p}/val_area_g'],
    )
  rest = {
      f.name: flat[f.name]
      for f in dataclasses.fields(TrialResult)
      if f.name not in ('methods', 'oracle')
  }
  return TrialResult(methods=methods, oracle=_curve(flat, 'oracle'), **rest)


def chunk_path(workdir: pathlib.Path, c: int) -> pathlib.Path:
  return workdir / 'chunks' / f'chunk_{c:04d}.npz'


def save_chunk(path: pathlib.Path, flat: Mapping[str, np.ndarray]) -> None:
  atomic_write(path, lambda f: np.savez(f, **flat), mode='wb')


def load_chunk(path: pathlib.Path) -> dict[str, np.ndarray]:
  with np.load(path) as z:
    return {k: z[k] for k in z.files}


def _json_num(x) -> Any:
  x = float(x)
  if math.isinf(x):
    return 'inf' if x > 0 else '-inf'
  return None if math.isnan(x) else x


def trial_records(
    flat: Mapping[str, np.ndarray],
    chunk: int,
    first_trial: int,
    grids: Mapping[str, Mapping[str, np.ndarray]],
    llm_names: Sequence[str],
) -> list[dict[str, Any]]:
  """One ``metrics.jsonl`` record per (trial, method) of a chunk."""
  res = unflatten(flat)
  curves = {n: r.metrics for n, r in res.methods.items()}
  curves['oracle'] = res.oracle
  recs = []
  for i in range(np.asarray(res.best_quality).shape[0]):
    test_llms = [
        n for n, t in zip(llm_names, res.test_llm_m[i], strict=True) if t
    ]
    for name, c in curves.items():
      rec = {
          'trial': first_trial + i,
          'chunk': chunk,
          'method': name,
          'area': _json_num(c.area[i]),
          'area50': _json_num(c.area50[i]),
          'qnc': _json_num(c.qnc[i]),
          'peak': _json_num(c.peak[i]),
      }
      if name in res.methods:
        sel = int(res.methods[name].selected[i])
        rec['selected'] = {
            k: np.asarray(v)[sel].item() for k, v in grids[name].items()
        }
      rec['test_llms'] = test_llms
      recs.append(rec)
  return recs


def write_jsonl(path: pathlib.Path, recs) -> None:
  atomic_write(
      path,
      lambda f: f.writelines(
          json.dumps(r, allow_nan=False) + '\n' for r in recs
      ),
  )


def append_jsonl(path: pathlib.Path, recs) -> None:
  with open(path, 'a') as f:
    f.writelines(json.dumps(r, allow_nan=False) + '\n' for r in recs)
