"""A router as one JSON file, and a reader of it in NumPy alone.

``unirouter export --router DIR --out router.json`` (or
:func:`unirouter_jax.deploy.export.write_portable`) writes the file; this
module reads and routes with it and imports nothing but ``json`` and
``numpy`` (never JAX), so a gateway can copy it as it is, or port its
routing (about 40 lines for K-means, 40 more for the soft and learned
maps) to another language. Soft and learned maps route as the router does
up to float32 rounding (``exp`` and sums are not XLA's): two LLMs whose
scores are within about 1e-5 may be ranked either way. The format (``format_version`` 1 for
a K-means router, 2 for a soft or learned cluster map):

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
* ``cluster_map`` (absent in files of version 1: ``kmeans``):
  ``{"kind": "kmeans"}``, ``{"kind": "soft", "beta"}`` (soft k-means
  responsibilities at inverse temperature ``beta``) or ``{"kind":
  "learned", "arch", "layers"}``: the network ``f`` of UniRoute's
  LearnedMap as ``dense`` (``kernel`` ``[in, out]``, optional ``bias``),
  ``batch_norm`` (``mean``, ``var``, ``scale``, optional ``bias``,
  ``epsilon``; running averages) and ``relu`` layers applied in order;
* ``rule``: the routing rule in words (:func:`rule`: :data:`RULE` for
  K-means, :data:`RULE_SOFT`, :data:`RULE_LEARNED`), which
  :func:`route_numpy` implements.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, NamedTuple

import numpy as np

FORMAT = 'unirouter_jax.portable_router'
FORMAT_VERSION = 2
KINDS = ('kmeans', 'soft', 'learned')
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
_GAMMA = (
    'gamma_m = sum_k phi_k * psi_km[k, m]; score_m = gamma_m + lambda * '
    'cost_m[m]'
)
_SOFTMAX = 'softmax: exp(z - max(z)) / sum(exp(z - max(z)))'
RULE_SOFT = {
    **RULE,
    'cluster': 'k = argmax_k phi_k (reported only); ties: the lowest k',
    'weights': (
        'phi = softmax(-beta * d), d_k the squared distance '
        'sum(x*x) - 2 * dot(x, centroids_kd[k]) + sum(centroids_kd[k]**2), '
        f'clipped at 0; {_SOFTMAX}'
    ),
    'score': _GAMMA,
}
RULE_LEARNED = {
    **RULE_SOFT,
    'weights': (
        'phi = softmax(f(x)); f applies cluster_map.layers in order: dense '
        'y = x @ kernel (+ bias); batch_norm y = (x - mean) * (scale / '
        f'sqrt(var + epsilon)) (+ bias); relu y = max(x, 0); {_SOFTMAX}'
    ),
}


def rule(kind: str) -> dict:
  """The rule of a cluster map kind, in words."""
  return {'kmeans': RULE, 'soft': RULE_SOFT, 'learned': RULE_LEARNED}[kind]


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
  cluster_map: dict | None = None  # parsed; None = K-means


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
  entry = obj.get('cluster_map', {'kind': 'kmeans'})
  if version == 1:  # written before cluster maps: K-means only
    entry = {'kind': 'kmeans'}
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
      cluster_map=_parse_map(entry, centroids_kd.shape, src),
  )


def _parse_map(entry, shape_kd, src: str) -> dict | None:
  """The ``cluster_map`` entry with NumPy arrays (None for K-means)."""
  kind = entry.get('kind') if isinstance(entry, dict) else None
  if kind not in KINDS:
    raise ValueError(
        f'{src}: cluster_map: unknown kind {kind!r} (expected one of '
        f'{list(KINDS)}).'
    )
  if kind == 'kmeans':
    return None
  if kind == 'soft':
    beta = entry.get('beta')
    if not isinstance(beta, (int, float)) or not np.isfinite(beta) or beta < 0:
      raise ValueError(
          f'{src}: cluster_map: beta: expected a finite number >= 0.'
      )
    return {'kind': kind, 'beta': np.float32(beta)}
  layers = entry.get('layers')
  if not isinstance(layers, list) or not layers:
    raise ValueError(f'{src}: cluster_map: layers: expected a list.')
  width, out = shape_kd[1], []
  for i, layer in enumerate(layers):
    where = f'{src}: cluster_map.layers[{i}]'
    op = layer.get('op') if isinstance(layer, dict) else None
    if op == 'relu':
      out.append({'op': op})
      continue
    if op not in ('dense', 'batch_norm'):
      raise ValueError(f'{where}: unknown op {op!r}.')
    names = ('kernel',) if op == 'dense' else ('mean', 'var', 'scale')
    parsed = {'op': op}
    for name in names + ('bias',):
      if name == 'bias' and 'bias' not in layer:
        continue
      want = (width, None) if name == 'kernel' else (width,)
      if op == 'dense' and name == 'bias':
        want = (parsed['kernel'].shape[1],)
      parsed[name] = _array(layer, name, want, where)
    if op == 'dense':
      width = parsed['kernel'].shape[1]
    else:
      eps = layer.get('epsilon')
      if not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f'{where}: epsilon: expected a number > 0.')
      parsed['epsilon'] = np.float32(eps)
    out.append(parsed)
  if width != shape_kd[0]:
    raise ValueError(
        f'{src}: cluster_map.layers: expected {shape_kd[0]} outputs (one '
        f'per cluster), got {width}.'
    )
  return {'kind': kind, 'layers': out}


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


def _embeddings(router: PortableRouter, emb_qd) -> np.ndarray:
  x_qd = np.asarray(emb_qd, np.float32)
  d = router.centroids_kd.shape[1]
  if x_qd.ndim != 2 or x_qd.shape[1] != d:
    raise ValueError(f'emb_qd: expected [q, {d}], got {list(x_qd.shape)}.')
  return x_qd


def _sqdist(router: PortableRouter, emb_qd) -> np.ndarray:
  """``[q, k]`` squared distances to the centroids, clipped at 0."""
  x_qd = _embeddings(router, emb_qd)
  c_kd = router.centroids_kd
  x2_q1 = np.sum(x_qd * x_qd, axis=-1, keepdims=True)
  c2_1k = np.sum(c_kd * c_kd, axis=-1)[None, :]
  return np.maximum(x2_q1 - np.float32(2.0) * (x_qd @ c_kd.T) + c2_1k, 0)


def _softmax(z_qk: np.ndarray) -> np.ndarray:
  e_qk = np.exp(z_qk - z_qk.max(axis=-1, keepdims=True))
  return e_qk / e_qk.sum(axis=-1, keepdims=True)


def weights_numpy(router: PortableRouter, emb_qd) -> np.ndarray:
  """``[q, k]`` cluster weights ``phi`` of a soft or learned map (the
  rule's ``weights``); the one-hot of the cluster for K-means."""
  cmap = router.cluster_map
  if cmap is None:
    k_q = np.argmin(_sqdist(router, emb_qd), axis=-1)
    return np.eye(router.centroids_kd.shape[0], dtype=np.float32)[k_q]
  if cmap['kind'] == 'soft':
    return _softmax(-cmap['beta'] * _sqdist(router, emb_qd))
  x = _embeddings(router, emb_qd)
  for layer in cmap['layers']:
    if layer['op'] == 'relu':
      x = np.maximum(x, np.float32(0))
      continue
    if layer['op'] == 'dense':
      x = x @ layer['kernel']
    else:
      inv = np.float32(1) / np.sqrt(layer['var'] + layer['epsilon'])
      x = (x - layer['mean']) * (inv * layer['scale'])
    if 'bias' in layer:
      x = x + layer['bias']
  return _softmax(x)


def assign_numpy(router: PortableRouter, emb_qd) -> np.ndarray:
  """``[q]`` cluster of each prompt (the rule's ``cluster``): the nearest
  centroid, or the heaviest weight of a soft or learned map."""
  if router.cluster_map is None:
    return np.argmin(_sqdist(router, emb_qd), axis=-1)
  return np.argmax(weights_numpy(router, emb_qd), axis=-1)


def gamma_numpy(router: PortableRouter, emb_qd) -> np.ndarray:
  """``[q, m]`` estimated error of every LLM on each prompt."""
  if router.cluster_map is None:
    return router.psi_km[assign_numpy(router, emb_qd)]
  return weights_numpy(router, emb_qd) @ router.psi_km


def route_numpy(router: PortableRouter, emb_qd, lam: float) -> np.ndarray:
  """``[q]`` index of the chosen LLM of each prompt (the rule's
  ``choice``) at cost weight ``lam``; names are ``router.llm_names``."""
  if not (np.isfinite(lam) and lam >= 0):
    raise ValueError(f'lam: expected a finite value >= 0, got {lam!r}.')
  gamma_qm = gamma_numpy(router, emb_qd)
  score_qm = gamma_qm + np.float32(lam) * router.cost_m[None, :]
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
