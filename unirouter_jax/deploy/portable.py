"""A router as one JSON file, and a reader of it in NumPy alone.

``unirouter export --router DIR --out router.json`` (or
:func:`unirouter_jax.deploy.export.write_portable`) writes the file; this
module reads and routes with it and imports nothing but ``json`` and
``numpy`` (never JAX), so a gateway can copy it as it is, or port its 40
lines of routing to another language. The format (``format_version`` 1):

* ``centroids_kd`` ``[k, d]``, ``psi_km`` ``[k, m]`` (estimated error of
  every LLM per cluster), ``count_km`` ``[k, m]`` (probe labels behind it),
  ``cost_m`` ``[m]``, ``llm_names``, ``shrinkage``: float32 values written
  by their shortest decimal representation (read back as float32 they are
  the router's values exactly);
* ``encoder``: ``{"id", "weights_hash"}`` (``null`` when not recorded);
  embed prompts with that encoder only;
* ``calibration``: calibrated cost weights for budgets (target mean costs
  per query) on the held-out prompts the router keeps, ``null`` if none:
  ``{"source", "num_prompts", "points": [{"budget", "lambda",
  "lambda_alt", "mix", "mean_cost", "mixed_mean_cost", "reached"}]}``;
* ``rule``: the routing rule in words (:data:`RULE`), which
  :func:`route_numpy` implements.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, NamedTuple

import numpy as np

FORMAT = 'unirouter_jax.portable_router'
FORMAT_VERSION = 1
RULE = {
    'dtype': 'float32: every array, lambda and intermediate result',
    'cluster': (
        'k = argmin_k (sum(x*x) - 2 * dot(x, centroids_kd[k]) + '
        'sum(centroids_kd[k]**2)), clipped at 0; ties: the lowest k'
    ),
    'score': 'score_m = psi_km[k, m] + lambda * cost_m[m]',
    'choice': (
        'argmin_m score_m; ties in score: the lowest cost_m, then the '
        'lowest index m'
    ),
    'lambda': 'cost weight >= 0 in error per unit of cost_m; 0 = most accurate',
}


class PortableRouter(NamedTuple):
  """An exported router as NumPy arrays. Axes: ``k`` clusters, ``d``
  embedding dim, ``m`` LLMs."""

  centroids_kd: np.ndarray
  psi_km: np.ndarray
  count_km: np.ndarray
  cost_m: np.ndarray
  llm_names: tuple[str, ...]
  encoder: dict | None
  calibration: dict | None
  meta: dict


def _array(obj: dict, name: str, shape: tuple, src: str) -> np.ndarray:
  try:
    a = np.asarray(obj[name], np.float32)
  except KeyError:
    raise ValueError(f'{src}: {name} is missing.') from None
  except (TypeError, ValueError):
    raise ValueError(f'{src}: {name}: expected an array of numbers.') from None
  want = tuple(a.shape[i] if s is None else s for i, s in enumerate(shape))
  if a.ndim != len(shape) or a.shape != want:
    raise ValueError(
        f'{src}: {name}: expected shape {list(shape)}, got {list(a.shape)}.'
    )
  if not np.isfinite(a).all():
    raise ValueError(f'{src}: {name}: expected finite numbers.')
  return a


def from_dict(obj: Any, source: str = 'router') -> PortableRouter:
  """Checks a parsed router file; ValueError naming ``source`` if bad."""
  src = source
  if not isinstance(obj, dict) or obj.get('format') != FORMAT:
    got = obj.get('format') if isinstance(obj, dict) else type(obj).__name__
    raise ValueError(
        f'{src}: not a unirouter portable router (format {got!r}, expected '
        f'{FORMAT!r}).'
    )
  version = obj.get('format_version')
  if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
    raise ValueError(
        f'{src}: format_version {version!r} is not supported (this reader '
        f'reads 1 to {FORMAT_VERSION}).'
    )
  names = obj.get('llm_names')
  if not isinstance(names, list) or not names:
    raise ValueError(f'{src}: llm_names: expected a non-empty list.')
  m = len(names)
  centroids_kd = _array(obj, 'centroids_kd', (None, None), src)
  k = centroids_kd.shape[0]
  if k == 0:
    raise ValueError(f'{src}: centroids_kd: expected at least one cluster.')
  return PortableRouter(
      centroids_kd=centroids_kd,
      psi_km=_array(obj, 'psi_km', (k, m), src),
      count_km=_array(obj, 'count_km', (k, m), src),
      cost_m=_array(obj, 'cost_m', (m,), src),
      llm_names=tuple(str(n) for n in names),
      encoder=obj.get('encoder'),
      calibration=obj.get('calibration'),
      meta={
          key: obj.get(key)
          for key in ('format_version', 'library_version', 'shrinkage')
      },
  )


def load_json(path) -> PortableRouter:
  """Reads a router file written by ``unirouter export``."""
  path = pathlib.Path(path)
  try:
    obj = json.loads(path.read_text())
  except OSError as e:
    raise ValueError(f'{path}: cannot read: {e.strerror}.') from e
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f'{path}: not readable JSON: {e}.') from e
  return from_dict(obj, str(path))


def assign_numpy(router: PortableRouter, emb_qd) -> np.ndarray:
  """``[q]`` nearest cluster of each prompt (the rule's ``cluster``)."""
  x_qd = np.asarray(emb_qd, np.float32)
  c_kd = router.centroids_kd
  if x_qd.ndim != 2 or x_qd.shape[1] != c_kd.shape[1]:
    raise ValueError(
        f'emb_qd: expected [q, {c_kd.shape[1]}], got {list(x_qd.shape)}.'
    )
  x2_q1 = np.sum(x_qd * x_qd, axis=-1, keepdims=True)
  c2_1k = np.sum(c_kd * c_kd, axis=-1)[None, :]
  d_qk = np.maximum(x2_q1 - np.float32(2.0) * (x_qd @ c_kd.T) + c2_1k, 0)
  return np.argmin(d_qk, axis=-1)


def route_numpy(router: PortableRouter, emb_qd, lam: float) -> np.ndarray:
  """``[q]`` index of the chosen LLM of each prompt (the rule's
  ``choice``) at cost weight ``lam``; names are ``router.llm_names``."""
  if not (np.isfinite(lam) and lam >= 0):
    raise ValueError(f'lam: expected a finite value >= 0, got {lam!r}.')
  k_q = assign_numpy(router, emb_qd)
  score_qm = router.psi_km[k_q] + np.float32(lam) * router.cost_m[None, :]
  tied_qm = score_qm == score_qm.min(axis=-1, keepdims=True)
  return np.argmin(np.where(tied_qm, router.cost_m[None, :], np.inf), -1)


def lambda_for_budget(router: PortableRouter, budget: float) -> float:
  """The smallest calibrated ``lambda`` whose mean cost is <= ``budget``.

  Mean cost (on the router's held-out calibration prompts) is
  non-increasing in ``lambda``, so this is the most accurate calibrated
  routing within the budget. ValueError when the file holds no
  calibration, or no calibrated point is within ``budget``.
  """
  points = (router.calibration or {}).get('points') or []
  fit = [p for p in points if p['mean_cost'] <= budget]
  if not fit:
    lowest = min((p['mean_cost'] for p in points), default=None)
    raise ValueError(
        f'budget: no calibrated cost weight has a mean cost <= {budget!r} ('
        + (
            'the file holds no calibration'
            if lowest is None
            else f'the cheapest has {lowest!r}'
        )
        + ').'
    )
  return float(min(p['lambda'] for p in fit))
